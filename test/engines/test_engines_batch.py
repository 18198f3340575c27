"""A dynamic-batch encoder (encoder_batch > 1, issue 13): its own exported graph beside the
static one, batch dynamic and everything else static, ONNX Runtime outputs equal to the static
graph's per image; backends refuse batches above their max_batch."""
import os

import numpy as np
import onnx
import pytest
import torch

from litesam_ros.engines import create_backend
from litesam_ros.engines.base import ENCODER_INPUTS, ENCODER_OUTPUTS
from litesam_ros.engines.choices import DEFAULT_ENCODER_BATCH, ENCODER_BATCH_RANGE
from litesam_ros.engines.factory import exported_graphs, int8_graphs
from litesam_ros.engines.onnx_export import BATCH_AXIS, encoder_graph_name
from litesam_ros.engines.ort_backend import OrtBackend
from litesam_ros.engines.quantize import int8_graph_path

from conftest import MODEL


def _dims(value_info):
    return [d.dim_param if d.dim_param else d.dim_value
            for d in value_info.type.tensor_type.shape.dim]


@pytest.fixture(scope="module")
def dyn_graphs(graphs_and_folder, model_and_id, cache_dir):
    """The dynamic-batch graphs, exported after the static ones into the same cache folder."""
    graphs, folder = graphs_and_folder
    before = os.stat(graphs.decoder).st_mtime_ns
    dyn, folder2 = exported_graphs(model_and_id[0], model_and_id[1], cache_dir,
                                   dynamic_batch=True)
    assert folder2 == folder and dyn.decoder == graphs.decoder
    assert os.stat(graphs.decoder).st_mtime_ns == before  # only the encoder was exported
    return dyn


@pytest.fixture(scope="module")
def ort_pair(graphs, dyn_graphs, model_and_id):
    cfg = model_and_id[0].config
    return (OrtBackend(graphs.encoder, graphs.decoder, cfg, threads=2),
            OrtBackend(dyn_graphs.encoder, dyn_graphs.decoder, cfg, threads=2, max_batch=3))


def test_dynamic_graph_is_a_separate_file_with_only_the_batch_dynamic(graphs, dyn_graphs,
                                                                      model_and_id):
    cfg = model_and_id[0].config
    assert dyn_graphs.encoder.name == encoder_graph_name(True) != graphs.encoder.name
    assert graphs.encoder.name == encoder_graph_name(False) and graphs.encoder.exists()
    m = onnx.load(str(dyn_graphs.encoder))
    assert [i.name for i in m.graph.input] == list(ENCODER_INPUTS)
    assert [o.name for o in m.graph.output] == list(ENCODER_OUTPUTS)
    s, e, n = cfg.image_size, cfg.embedding_size, cfg.ppn_top_n
    assert _dims(m.graph.input[0]) == [BATCH_AXIS, 3, s, s]
    want = {"embeddings": [cfg.embed_dim, e, e], "points": [n, 2], "scores": [n],
            "groups": [n], "boxes": [n, 4]}
    for out in m.graph.output:
        assert _dims(out) == [BATCH_AXIS, *want[out.name]], out.name
    # the static graph is untouched: batch 1 everywhere
    static = onnx.load(str(graphs.encoder))
    assert _dims(static.graph.input[0]) == [1, 3, s, s]
    assert all(_dims(o)[0] == 1 for o in static.graph.output)


def _rel(got: torch.Tensor, want: torch.Tensor) -> float:
    got, want = got.double(), want.double()
    return float((got - want).abs().max() / want.abs().max().clamp_min(1e-12))


def test_ort_dynamic_batch_equals_the_static_graph_per_image(ort_pair, astronaut, model_and_id):
    from litesam_ros.model.geometry import Geometry

    static, dynamic = ort_pair
    geo = Geometry.of(model_and_id[0].config)
    x = torch.cat([geo.preprocess(astronaut), geo.preprocess(np.ascontiguousarray(
        astronaut[::-1, ::2]))])
    one = [static.encode(x[i:i + 1]) for i in range(2)]
    b1 = dynamic.encode(x[:1])
    b2 = dynamic.encode(x)
    assert b2.batch == 2 and b2.embeddings.shape[1:] == one[0].embeddings.shape[1:]
    for name in ENCODER_OUTPUTS:
        assert _rel(getattr(b1, name), getattr(one[0], name)) <= 1e-5, name
        for i in range(2):
            assert _rel(getattr(b2.select(i), name), getattr(one[i], name)) <= 1e-5, name
    assert b2.groups is not None and b2.groups.dtype == torch.int64


def test_backends_refuse_batches_above_max_batch(ort_pair, graphs, model_and_id):
    static, dynamic = ort_pair
    s = model_and_id[0].config.image_size
    assert (static.max_batch, dynamic.max_batch) == (1, 3)
    with pytest.raises(ValueError, match="1..1"):
        static.encode(torch.zeros(2, 3, s, s))
    with pytest.raises(ValueError, match="1..3"):
        dynamic.encode(torch.zeros(4, 3, s, s))
    with pytest.raises(ValueError, match="static batch"):
        OrtBackend(graphs.encoder, graphs.decoder, model_and_id[0].config, max_batch=2)
    torch_b = create_backend("torch", MODEL, encoder_batch=2)
    assert torch_b.max_batch == 2 and torch_b.encode(torch.zeros(2, 3, s, s)).batch == 2
    with pytest.raises(ValueError, match="1..2"):
        torch_b.encode(torch.zeros(3, 3, s, s))


def test_create_backend_encoder_batch(dyn_graphs, graphs, cache_dir):
    assert ENCODER_BATCH_RANGE == (1, 16) and DEFAULT_ENCODER_BATCH == 1
    ort_b = create_backend("onnxruntime", MODEL, cache_dir=cache_dir, encoder_batch=4)
    assert ort_b.max_batch == 4
    assert isinstance(ort_b.encoder.session.get_inputs()[0].shape[0], str)
    default = create_backend("onnxruntime", MODEL, cache_dir=cache_dir)
    assert default.max_batch == 1 and default.encoder.session.get_inputs()[0].shape[0] == 1
    for bad in (0, 17, 2.5):
        with pytest.raises(ValueError, match="encoder_batch"):
            create_backend("torch", MODEL, encoder_batch=bad)


def test_int8_graphs_are_named_after_their_fp32_graph(graphs, dyn_graphs, tmp_path):
    assert int8_graph_path(graphs.encoder, tmp_path, "cpu").name == "encoder.int8-cpu.onnx"
    assert int8_graph_path(graphs.decoder, tmp_path, "cpu").name == "decoder.int8-cpu.onnx"
    assert int8_graph_path(dyn_graphs.encoder, tmp_path, "tensorrt").name == \
        "encoder-dynbatch.int8-tensorrt.onnx"
    # int8_graphs looks for (and would quantize into) those names: present files are reused
    for part in (dyn_graphs.encoder,):
        int8_graph_path(part, tmp_path, "cpu").write_bytes(b"")
    got = int8_graphs(dyn_graphs, tmp_path, None, "cpu", ("encoder",))
    assert got.encoder == tmp_path / "encoder-dynbatch.int8-cpu.onnx"
    assert got.decoder == dyn_graphs.decoder
