"""The exported graphs against TensorRT's ONNX parser rules and the FP16 hazards, without
TensorRT: r320 static and dynamic batch, its decoder and the `tensorrt`-target INT8 encoder."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from litesam_ros.engines import trt_graph_rules as rules
from litesam_ros.engines.factory import exported_graphs
from litesam_ros.engines.quantize import head_convolutions
from litesam_ros.engines.tensorrt_backend import DecoderProfile, encoder_profile


@pytest.fixture(scope="module")
def dyn_encoder(model_and_id, cache_dir):
    return exported_graphs(model_and_id[0], model_and_id[1], cache_dir, dynamic_batch=True)[0]


def test_parser_rules_pass_on_every_exported_graph(graphs, dyn_encoder, trt_int8_encoder,
                                                   model_and_id):
    cfg = model_and_id[0].config
    cases = [(graphs.encoder, None), (dyn_encoder.encoder, encoder_profile(4)),
             (graphs.decoder, DecoderProfile.for_config(cfg)), (trt_int8_encoder, None)]
    for path, profile in cases:
        found = rules.parser_violations(path, "10", profile)
        assert found == [], f"{path.name}: " + "; ".join(map(str, found))
    # TensorRT 8.6's parser reads opset 17 at most: the reason the start-up check refuses it
    assert [str(v) for v in rules.parser_violations(graphs.encoder, "8.6")] == [
        "<graph> (opset): opset 18 outside the parser's 7-17"]


def test_int8_tensorrt_graph_follows_the_qdq_rules(trt_int8_encoder, int8_paths, graphs):
    g = onnx.load(str(trt_int8_encoder)).graph
    inits = {i.name: i.data_type for i in g.initializer}
    dq_types = [inits.get(n.input[0]) for n in g.node if n.op_type == "DequantizeLinear"]
    assert TensorProto.INT32 not in dq_types and dq_types
    made_by = {o: n.op_type for n in g.node for o in n.output}
    assert all(made_by[o.name] != "DequantizeLinear" for o in g.output)
    # no Conv output goes through a Q/DQ pair of its own
    users = {}
    for n in g.node:
        for i in n.input:
            users.setdefault(i, []).append(n.op_type)
    assert not [n.name for n in g.node if n.op_type == "Conv"
                and "QuantizeLinear" in users.get(n.output[0], ())]
    # the AutoPPN heads' last convolutions stay float (weights not from a DQ)
    heads = set(head_convolutions(onnx.load(str(graphs.encoder))))
    assert len(heads) >= 2
    for n in g.node:
        if n.name in heads:
            assert made_by.get(n.input[1]) != "DequantizeLinear", n.name
    # the CPU target is unchanged: ONNX Runtime's default INT32 bias DQs are still there
    cpu = onnx.load(str(int8_paths["encoder"])).graph
    cpu_inits = {i.name: i.data_type for i in cpu.initializer}
    assert any(cpu_inits.get(n.input[0]) == TensorProto.INT32 for n in cpu.node
               if n.op_type == "DequantizeLinear")


def test_fp16_lint_passes_on_the_exported_encoder(graphs, dyn_encoder):
    for path in (graphs.encoder, dyn_encoder.encoder):
        pinned = rules.peak_test_nodes(path)
        assert len(pinned) == 3
        assert rules.fp16_hazards(path, pinned) == []
        # unpinned, the peak test is reported
        assert [v.op for v in rules.fp16_hazards(path)] == ["Equal"]


def _model(nodes, inputs, outputs, inits=(), opset=18):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def test_parser_rules_name_the_node_and_the_rule():
    """Each rule can fail: INT32 DQ input, nonzero zero point, output straight from a DQ,
    Clip on INT64, TopK K too large, an unknown op, a dynamic input without a profile."""
    inits = [helper.make_tensor("b", TensorProto.INT32, [2], [1, 2]),
             helper.make_tensor("s", TensorProto.FLOAT, [], [0.1]),
             helper.make_tensor("zp", TensorProto.INT8, [], [3]),
             helper.make_tensor("k", TensorProto.INT64, [1], [4000])]
    nodes = [helper.make_node("DequantizeLinear", ["b", "s"], ["bf"], name="dq_bias"),
             helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["xq"], name="q_zp"),
             helper.make_node("DequantizeLinear", ["xq", "s", "zp"], ["y"], name="dq_out"),
             helper.make_node("Clip", ["i"], ["ic"], name="clip_int"),
             helper.make_node("TopK", ["x", "k"], ["tv", "ti"], name="topk_big"),
             helper.make_node("Col2Im", ["x", "k", "k"], ["c"], name="odd")]
    m = _model(nodes, [_vi("x", TensorProto.FLOAT, [1, "n"]), _vi("i", TensorProto.INT64, [4])],
               [_vi("y", TensorProto.FLOAT, None), _vi("ic", TensorProto.INT64, [4]),
                _vi("bf", TensorProto.FLOAT, [2])], inits)
    found = {(v.node, v.rule.split(" ")[0]) for v in rules.parser_violations(m)}
    assert ("dq_bias", "input") in found  # INT32 into a DequantizeLinear
    assert ("q_zp", "zero") in found and ("dq_out", "graph") in found
    assert ("clip_int", "input") in found and ("topk_big", "K") in found
    assert ("odd", "op") in found and ("", "dynamic") in found


def test_fp16_lint_catches_an_integer_through_float():
    """The pattern the old floor division exported: Cast(INT64->FLOAT) Div Floor Cast."""
    inits = [helper.make_tensor("c", TensorProto.FLOAT, [], [400.0])]
    nodes = [helper.make_node("Cast", ["i"], ["f"], to=TensorProto.FLOAT, name="to_f"),
             helper.make_node("Div", ["f", "c"], ["d"], name="div"),
             helper.make_node("Floor", ["d"], ["fl"], name="floor"),
             helper.make_node("Cast", ["fl"], ["g"], to=TensorProto.INT64, name="to_i")]
    m = _model(nodes, [_vi("i", TensorProto.INT64, [8])], [_vi("g", TensorProto.INT64, [8])],
               inits)
    assert [(v.node, v.op) for v in rules.fp16_hazards(m)] == [("to_i", "Cast")]


def test_fp16_lint_on_float_equality():
    """A label input against an FP16-exact code is fine; a computed tensor against its own max
    pool (the peak test) is reported unless pinned."""
    inits = [helper.make_tensor("minus1", TensorProto.FLOAT, [], [-1.0])]
    nodes = [helper.make_node("Equal", ["labels", "minus1"], ["pad"], name="is_pad"),
             helper.make_node("Sigmoid", ["x"], ["s"], name="sig"),
             helper.make_node("MaxPool", ["s"], ["mp"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                              name="pool"),
             helper.make_node("Equal", ["s", "mp"], ["peak"], name="peak")]
    m = _model(nodes, [_vi("labels", TensorProto.FLOAT, [4, 2]),
                       _vi("x", TensorProto.FLOAT, [1, 1, 8, 8])],
               [_vi("pad", TensorProto.BOOL, [4, 2]), _vi("peak", TensorProto.BOOL, [1, 1, 8, 8])],
               inits)
    assert [v.node for v in rules.fp16_hazards(m)] == ["peak"]
    assert rules.peak_test_nodes(m) == ["peak", "pool", "sig"]
    assert rules.fp16_hazards(m, rules.peak_test_nodes(m)) == []


def test_fp16_rounds_the_old_index_math_and_not_the_new():
    """Why: r1024's top-N indices (3 groups x 64 x 64 cells) computed as the old graph did in
    FP16 (float Div, Floor) go wrong; integer floor division cannot."""
    cells, w = 64 * 64, 64
    idx = np.arange(3 * cells, dtype=np.int64)
    old = np.floor(idx.astype(np.float16) / np.float16(cells)).astype(np.int64)
    pos = idx % cells
    old_row = np.floor(pos.astype(np.float16) / np.float16(w)).astype(np.int64)
    assert (old != idx // cells).any() and (old_row != pos // w).any()
