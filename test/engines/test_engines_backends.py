"""Backends agree on a real photo; the Segmenter runs end to end on torch and ONNX Runtime."""
import logging
import time

import numpy as np
import pytest
import torch

from conftest import MODEL, mask_iou
from litesam_ros.engines import create_backend
from litesam_ros.engines.base import EncoderResult
from litesam_ros.segment import Prompt, Segmenter, SegmentSettings
from litesam_ros.masks import decode_rle
from litesam_ros.model.geometry import Geometry

LOOSE = SegmentSettings(pred_iou_thresh=0.0, stability_score_thresh=0.0, points_per_side=8,
                        box_nms_thresh=0.9)
BOXES = [[100, 50, 300, 250], [180, 20, 330, 180], [0, 300, 512, 512]]


@pytest.fixture(scope="module")
def backends(graphs, cache_dir):
    tb = create_backend("torch", MODEL, device="cpu")
    ob = create_backend("onnxruntime", MODEL, cache_dir=cache_dir, threads=2)
    return tb, ob


def test_backend_interface(backends, model_and_id):
    cfg = model_and_id[0].config
    for b in backends:
        assert b.config.image_size == cfg.image_size and isinstance(b.name, str)
    assert backends[0].name.startswith("torch") and backends[1].name.startswith("onnxruntime")


def test_onnx_runtime_threads_stop_spinning_when_a_run_returns(backends, astronaut):
    """Torch work follows every encoder and decoder run on the same cores (ort_backend._Session):
    after a run the sessions' threads use no CPU. With ONNX Runtime's default they spin on,
    about one core busy for the next 50 ms (measured: 0.95-1.03 of a core; this: <= 0.003)."""
    ob = backends[1]
    cfg = ob.config
    x = Geometry.of(cfg).preprocess(astronaut)
    emb = ob.encode(x).embeddings
    coords = torch.tensor([[[150.0, 100.0], [0.0, 0.0]]] * 4)
    labels = torch.tensor([[1.0, -1.0]] * 4)
    runs = {"encoder": lambda: ob.encode(x), "decoder": lambda: ob.decode(emb, coords, labels)}
    for part, run in runs.items():
        busy = []
        for _ in range(3):
            run()
            cpu, wall = time.process_time(), time.perf_counter()
            time.sleep(0.05)
            busy.append((time.process_time() - cpu) / (time.perf_counter() - wall))
        assert min(busy) < 0.2, f"{part}: threads busy {busy} of a core after a run"


def test_backends_agree_on_real_photo(backends, astronaut):
    tb, ob = backends
    cfg = tb.config
    x = Geometry.of(cfg).preprocess(astronaut)
    et, eo = tb.encode(x), ob.encode(x)
    assert isinstance(eo, EncoderResult) and eo.groups.dtype == torch.int64
    rel = (et.embeddings - eo.embeddings).norm() / et.embeddings.norm()
    assert rel < 1e-3
    coords = torch.tensor([[[150.0, 100.0], [0.0, 0.0]], [[60.0, 40.0], [200.0, 150.0]]])
    labels = torch.tensor([[1.0, -1.0], [2.0, 3.0]])
    lt, it = tb.decode(et.embeddings, coords, labels)
    lo, io = ob.decode(et.embeddings, coords, labels)
    assert lt.shape == lo.shape == (2, 4, cfg.low_res_size, cfg.low_res_size)
    assert ((lt - lo).norm() / lt.norm()).item() < 1e-3
    torch.testing.assert_close(it, io, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("strategy", ["autoppn", "grid", "hierarchical"])
def test_segment_everything_on_both_backends(backends, astronaut, strategy):
    results = []
    for b in backends:
        seg = Segmenter(b, LOOSE.with_(hierarchical_logit_thresh=0.0))
        res = seg.segment_everything(astronaut, strategy)
        n = len(res)
        assert n > 0 and res.masks.shape == (n, 512, 512)
        for m, r in zip(res.masks, res.rles()):
            assert r["size"] == [512, 512] and (decode_rle(r) == m).all()
        assert (res.areas == res.masks.reshape(n, -1).sum(1)).all()
        assert (res.boxes[:, 2] <= 512).all() and (res.boxes[:, 3] <= 512).all()
        results.append(res)
    rt, ro = results
    assert len(rt) == len(ro)
    ious = [mask_iou(a, b) for a, b in zip(rt.masks, ro.masks)]
    assert min(ious) >= 0.99


def test_prompts_on_both_backends_in_order(backends, astronaut):
    prompts = [Prompt(box=b) for b in BOXES] + [Prompt(points=[[250, 200], [50, 50]],
                                                       labels=[1, 0])]
    out = []
    for b in backends:
        seg = Segmenter(b, LOOSE)
        res = seg.segment_prompts(astronaut, prompts)
        assert len(res) == 4 and res.masks.shape == (4, 512, 512)
        for i, box in enumerate(BOXES):
            np.testing.assert_allclose(res.prompt_boxes[i], box)
        assert res.prompt_boxes[3] is None
        np.testing.assert_allclose(res.prompt_points[3], [[250, 200], [50, 50]])
        # the cached embedding answers the same prompts identically, one prompt at a time
        for i, p in enumerate(prompts):
            one = seg.segment_prompts(None, [p])
            assert (one.masks[0] == res.masks[i]).mean() > 0.999
        out.append(res)
    for a, b in zip(out[0].masks, out[1].masks):
        assert mask_iou(a, b) >= 0.99
    np.testing.assert_allclose(out[0].iou_scores, out[1].iou_scores, atol=1e-4)


def test_auto_backend_logs_its_choice(graphs, cache_dir, caplog):
    with caplog.at_level(logging.INFO, logger="litesam_ros.engines.factory"):
        b = create_backend("auto", MODEL, cache_dir=cache_dir)
    assert b.name.startswith("onnxruntime:CPUExecutionProvider")
    assert any("backend: ONNX Runtime CPUExecutionProvider" in r.message for r in caplog.records)
    assert any("reusing ONNX graphs" in r.message for r in caplog.records)
