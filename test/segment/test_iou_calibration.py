"""The weights' IoU calibration is applied in one place, the segment pipeline, for every backend;
the backends' own output stays the raw IoU head. Real weights (the shipped demo checkpoint, and a
small randomly initialised Lite-SAM for ONNX Runtime), real photos."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from litesam_ros.engines import create_backend
from litesam_ros.model import load_model, save_checkpoint
from litesam_ros.model.resources import DEMO_WEIGHTS, find_shared_file
from litesam_ros.segment import Prompt, Segmenter, SegmentSettings
from litesam_ros.segment.pipeline import CalibratedBackend, calibrated
from litesam_ros.segment.postprocess import calibrate_iou

BOOST = {"scale": 1.0, "bias": 4.0}  # raw 0.3 -> 0.96: a raw IoU below 0.9 passes 0.9


@pytest.fixture(scope="module")
def photo():
    from skimage import data

    return np.ascontiguousarray(data.coffee())


@pytest.fixture(scope="module")
def demo_model():
    path = find_shared_file("weights", DEMO_WEIGHTS)
    if path is None:
        pytest.skip("the shipped demo weights are not installed")
    return load_model(path).model


def _raw_backend(model):
    backend = create_backend("torch", model, threads=1)  # a module: no calibration
    assert backend.iou_calibration == {}
    return backend


def test_calibrate_iou_values():
    raw = torch.tensor([-0.3, 0.0, 0.25, 0.5, 0.75, 1.0, 1.4])
    assert calibrate_iou(raw, {}) is raw  # identity: untouched, even outside [0, 1]
    same = calibrate_iou(raw, {"scale": 1.0, "bias": 0.0})
    torch.testing.assert_close(same[2:5], raw[2:5])
    assert same[0] == pytest.approx(1e-4) and same[-1] == pytest.approx(1 - 1e-4)
    sharp = calibrate_iou(raw, {"scale": 2.0, "bias": 0.0})
    assert sharp[3] == pytest.approx(0.5) and sharp[2] == pytest.approx(1 / 10)  # 1/(1+3^2)
    shifted = calibrate_iou(raw, BOOST)
    assert shifted[2] == pytest.approx(1 / (1 + np.exp(-(np.log(0.25 / 0.75) + 4.0))))
    assert (torch.diff(shifted) >= 0).all()


def test_a_low_raw_iou_passes_when_the_calibration_says_so(demo_model, photo):
    backend = _raw_backend(demo_model)
    strict = SegmentSettings(pred_iou_thresh=0.9, stability_score_thresh=0.0)
    plain = Segmenter(backend, strict).segment_everything(photo)
    loose = Segmenter(backend, strict.with_(pred_iou_thresh=0.0)).segment_everything(photo)
    assert len(loose) > 0 and loose.iou_scores.max() < 0.9  # the raw head never says 0.9 here
    assert len(plain) == 0  # identity without a calibration: nothing passes 0.9
    backend.iou_calibration = BOOST
    boosted = Segmenter(backend, strict).segment_everything(photo)
    assert len(boosted) > 0
    assert (boosted.iou_scores > 0.9).all()
    # published scores are the calibrated raw scores of the same masks (same NMS order)
    backend.iou_calibration = {}
    raw = Segmenter(backend, strict.with_(pred_iou_thresh=0.0)).segment_everything(photo)
    k = len(boosted)
    np.testing.assert_allclose(
        boosted.iou_scores, calibrate_iou(torch.from_numpy(raw.iou_scores[:k]), BOOST).numpy(),
        atol=1e-6)
    assert (boosted.masks == raw.masks[:k]).all()


def test_prompts_get_calibrated_scores_and_the_backend_stays_raw(demo_model, photo):
    backend = _raw_backend(demo_model)
    prompts = [Prompt(box=(120, 40, 420, 380)), Prompt(points=[(300, 200)], labels=[1])]
    raw = Segmenter(backend).segment_prompts(photo, prompts, multimask=True)
    backend.iou_calibration = {"scale": 0.5, "bias": 1.0}
    seg = Segmenter(backend)
    cal = seg.segment_prompts(photo, prompts, multimask=True)
    expected = calibrate_iou(torch.from_numpy(raw.iou_scores), backend.iou_calibration)
    np.testing.assert_allclose(cal.iou_scores, expected.numpy(), atol=1e-6)
    assert (cal.masks == raw.masks).all()  # monotonic: the same multimask output is chosen
    # the backend itself still returns the raw head output
    enc = backend.encode(seg.geometry.preprocess(photo))
    _, iou = backend.decode(enc.embeddings, torch.tensor([[[150.0, 100.0]]]),
                            torch.tensor([[1.0]]))
    _, direct = demo_model.decode(enc.embeddings, torch.tensor([[[150.0, 100.0]]]),
                                  torch.tensor([[1.0]]))
    torch.testing.assert_close(iou, direct.float())


def test_no_wrapper_without_calibration(demo_model):
    backend = _raw_backend(demo_model)
    assert calibrated(backend) is backend
    backend.iou_calibration = BOOST
    wrapped = calibrated(backend)
    assert isinstance(wrapped, CalibratedBackend) and wrapped.inner is backend
    assert wrapped.config is backend.config and wrapped.device == backend.device
    assert wrapped.threads == backend.threads  # anything else: the backend's own


def test_onnxruntime_gets_the_checkpoints_calibration(tmp_path, photo):
    """The calibration reaches an ONNX Runtime backend from the checkpoint, as the recommended
    thresholds do, and its scores are the calibrated raw scores."""
    from litesam_ros.model import build_model, get_config

    torch.manual_seed(0)  # a small Lite-SAM (64 px input): the export takes seconds
    model = build_model(get_config("lite_sam_r320").replace(
        name="tiny_calibration_test", image_size=64, embed_dim=32, stage_dims=(8, 8, 16, 16),
        stage_depths=(1, 1, 1, 1), ppn_dim=16, ppn_blocks=1, decoder_heads=2,
        decoder_mlp_dim=64, iou_head_hidden_dim=32, ppn_top_n=16))
    calibration = {"scale": 1.5, "bias": -0.5}
    path = tmp_path / "calibrated.pt"
    save_checkpoint(model, path, {"thresholds": {"pred_iou_thresh": 0.2},
                                  "iou_calibration": dict(calibration, ece_before=0.2)})
    ort = create_backend("onnxruntime", path, cache_dir=tmp_path / "cache", threads=1)
    assert ort.iou_calibration == calibration and ort.model_thresholds == {"pred_iou_thresh": 0.2}
    prompts = [Prompt(box=(60, 30, 300, 260))]
    cal = Segmenter(ort).segment_prompts(photo, prompts)
    ort.iou_calibration = {}
    raw = Segmenter(ort).segment_prompts(photo, prompts)
    np.testing.assert_allclose(
        cal.iou_scores, calibrate_iou(torch.from_numpy(raw.iou_scores), calibration).numpy(),
        atol=1e-6)
