"""INT8 QDQ graphs: structure, calibration pre-processing, agreement with FP32; the refusal
of int8 with ONNX Runtime on the CPU (issue 15.6)."""
import numpy as np
import onnx
import pytest

from conftest import MODEL, mask_iou
from litesam_ros.engines import create_backend
from litesam_ros.engines.factory import ORT_CPU_INT8_REFUSAL
from litesam_ros.engines.ort_backend import OrtBackend
from litesam_ros.engines.quantize import calibration_images, grid_points, preprocess
from litesam_ros.segment import Prompt, Segmenter, SegmentSettings
from litesam_ros.model.geometry import Geometry
from litesam_ros.segment import strategies


def test_calibration_preprocessing_is_the_model_geometry(model_and_id):
    cfg = model_and_id[0].config
    for img in calibration_images(("coffee", "camera")):
        assert img.dtype == np.uint8 and img.shape[2] == 3
        want = Geometry.of(cfg).preprocess(img)
        np.testing.assert_array_equal(preprocess(img, cfg), want.numpy())
    np.testing.assert_allclose(grid_points(8, (240, 320)),
                               strategies.grid_points(8, (240, 320)), rtol=1e-6)


def test_int8_graphs_hold_qdq_nodes(int8_paths):
    for part in ("encoder", "decoder"):
        ops = [n.op_type for n in onnx.load(str(int8_paths[part])).graph.node]
        assert ops.count("QuantizeLinear") > 10 and ops.count("DequantizeLinear") > 10


def test_int8_graph_runs_and_stays_near_fp32(int8_paths, graphs, model_and_id, astronaut):
    """quantize_model's encoder graph (what TensorRT's Q/DQ build and ORT CUDA use) loads in
    ONNX Runtime and stays near FP32: a graph-level check, no create_backend."""
    cfg = model_and_id[0].config
    fp32 = OrtBackend(graphs.encoder, graphs.decoder, cfg, "cpu", threads=2)
    int8 = OrtBackend(int8_paths["encoder"], graphs.decoder, cfg, "cpu", threads=2,
                      precision="int8")
    prompts = [Prompt(box=[100, 50, 300, 250]), Prompt(box=[180, 20, 330, 180]),
               Prompt(box=[0, 300, 512, 512]), Prompt(points=[[250, 200]], labels=[1])]
    s = SegmentSettings()
    r32 = Segmenter(fp32, s).segment_prompts(astronaut, prompts)
    r8 = Segmenter(int8, s).segment_prompts(astronaut, prompts)
    ious = [mask_iou(a, b) for a, b in zip(r32.masks, r8.masks)]
    # Measured in a fresh venv (2026-12-01): 0.75-0.88 (r320, random weights, 2 calibration
    # photos); issue 15.6 measured every CPU variant below the 0.95 target and slower than
    # FP32, so create_backend refuses int8 on ONNX Runtime CPU (next test). This guards the
    # graph against breaking outright.
    assert min(ious) >= 0.7 and float(np.mean(ious)) >= 0.8, ious
    # and INT8 is not a no-op: embeddings differ
    x = Geometry.of(cfg).preprocess(astronaut)
    e32, e8 = fp32.encode(x).embeddings, int8.encode(x).embeddings
    rel = ((e32 - e8).norm() / e32.norm()).item()
    assert 1e-5 < rel < 0.35  # measured 0.27 (see above)


@pytest.mark.parametrize("kind", ["onnxruntime", "auto"])
def test_int8_is_refused_with_onnxruntime_on_cpu(kind, graphs, cache_dir):
    if kind == "auto":
        from litesam_ros.engines import tensorrt_backend
        from litesam_ros.engines.factory import _ort_cuda_available

        if tensorrt_backend.tensorrt_available() or _ort_cuda_available():
            pytest.skip("auto resolves to a GPU backend here")
    with pytest.raises(ValueError) as exc:
        create_backend(kind, MODEL, precision="int8", cache_dir=cache_dir, threads=2)
    assert str(exc.value) == ORT_CPU_INT8_REFUSAL
    assert "\n" not in ORT_CPU_INT8_REFUSAL and "TensorRT" in ORT_CPU_INT8_REFUSAL
    with pytest.raises(ValueError, match="^precision int8 is not offered with ONNX Runtime on "
                                         "CPU: "):
        create_backend("onnxruntime", MODEL, precision="int8", cache_dir=cache_dir,
                       device="cpu")


def test_quantize_rejects_unknown_target(graphs, tmp_path):
    from litesam_ros.engines.quantize import quantize_graph

    with pytest.raises(ValueError, match="target"):
        quantize_graph(graphs.encoder, tmp_path / "x.onnx", None, target="gpu")
