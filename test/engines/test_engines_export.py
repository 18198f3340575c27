"""ONNX graphs: structure (opset, LayerNormalization, dynamic P/K, no shape inputs) and
ONNX Runtime outputs against torch."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from litesam_ros.engines.base import DECODER_INPUTS, DECODER_OUTPUTS, ENCODER_OUTPUTS
from litesam_ros.engines.onnx_export import compare_with_ort, op_types
from litesam_ros.engines.ort_backend import _Session


def _optimized_ops(graph, out, level=ort.GraphOptimizationLevel.ORT_ENABLE_ALL):
    """Op types of ``graph`` as a plain ONNX Runtime CPU session at ``level`` optimises it."""
    so = ort.SessionOptions()
    so.graph_optimization_level = level
    so.optimized_model_filepath = str(out)
    ort.InferenceSession(str(graph), so, providers=["CPUExecutionProvider"])
    return _ops_in(out)


def _ops_in(path):
    return [n.op_type for n in onnx.load(str(path)).graph.node]


def _litevit_blocks(model):
    return sum(type(m).__name__ == "LiteViTBlock" for m in model.modules())


def _dims(value_info):
    return [d.dim_param if d.dim_param else d.dim_value
            for d in value_info.type.tensor_type.shape.dim]


def test_encoder_graph_structure(graphs, model_and_id):
    cfg = model_and_id[0].config
    m = onnx.load(str(graphs.encoder))
    onnx.checker.check_model(m, full_check=True)
    assert max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert [i.name for i in m.graph.input] == ["image"]
    assert _dims(m.graph.input[0]) == [1, 3, cfg.image_size, cfg.image_size]
    assert [o.name for o in m.graph.output] == list(ENCODER_OUTPUTS)
    e, n = cfg.embedding_size, cfg.ppn_top_n
    assert _dims(m.graph.output[0]) == [1, cfg.embed_dim, e, e]
    assert _dims(m.graph.output[1]) == [1, n, 2]
    assert "LayerNormalization" in op_types(graphs.encoder)


def test_encoder_graph_is_folded_and_onnx_runtime_fuses_its_gelu(graphs, model_and_id, tmp_path):
    """The export folds the LiteViT blocks (no Neg of MSPM's '- x' left) and writes GELU in the
    order ONNX Runtime fuses into one Gelu op; either lost silently costs CPU time."""
    ops = op_types(graphs.encoder)
    assert "Neg" not in ops and "AveragePool" in ops
    optimized = _optimized_ops(graphs.encoder, tmp_path / "optimized.onnx",
                               ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED)
    blocks = _litevit_blocks(model_and_id[0])
    assert blocks > 0 and optimized.count("Gelu") >= blocks


def test_encoder_mixers_stay_in_onnx_runtimes_blocked_layout(graphs, model_and_id, tmp_path):
    """With all optimisations ONNX Runtime runs convolutions and pools in its blocked NCHWc
    layout and reorders around the ops it cannot (the blocks' whole-map LayerNormalization).
    The export writes MSPM's weighted branches as depthwise convs summed before the residual,
    so a block needs 2 ReorderOutput (after the mixer, after the MLP); per-channel Muls made
    ONNX Runtime reorder each pooled branch out (4 per block: 65 in all at r320, now 32)."""
    optimized = _optimized_ops(graphs.encoder, tmp_path / "optimized.onnx")
    if "ReorderInput" not in optimized:
        pytest.skip("ONNX Runtime uses no NCHWc layout on this CPU")
    blocks = _litevit_blocks(model_and_id[0])
    extra = 8  # stem, patch mergings, neck and AutoPPN head outputs
    assert blocks > 0 and optimized.count("ReorderOutput") <= 2 * blocks + extra


def test_backend_sessions_leave_the_decoders_layer_norms_unfused(graphs, tmp_path):
    """ONNX Runtime's SkipLayerNormalization (Add + Add + LayerNormalization in one kernel) is
    3x slower than the three ops on the decoder's image tokens; the backend's sessions keep
    the ops. The plain all-optimisations session shows the pattern is there to fuse."""
    assert "SkipLayerNormalization" in _optimized_ops(graphs.decoder, tmp_path / "fused.onnx")
    _Session(graphs.decoder, ["CPUExecutionProvider"], 2, optimized_path=tmp_path / "ours.onnx")
    ours = _ops_in(tmp_path / "ours.onnx")
    assert "SkipLayerNormalization" not in ours and "LayerNormalization" in ours


def test_decoder_graph_structure(graphs, model_and_id):
    cfg = model_and_id[0].config
    m = onnx.load(str(graphs.decoder))
    onnx.checker.check_model(m, full_check=True)
    assert [i.name for i in m.graph.input] == list(DECODER_INPUTS)
    emb, coords, labels = (_dims(i) for i in m.graph.input)
    e = cfg.embedding_size
    assert emb == [1, cfg.embed_dim, e, e]
    assert isinstance(coords[0], str) and isinstance(coords[1], str) and coords[2] == 2
    assert labels == coords[:2]
    assert [o.name for o in m.graph.output] == list(DECODER_OUTPUTS)
    logits = _dims(m.graph.output[0])
    assert logits[0] == coords[0] and logits[2:] == [cfg.low_res_size, cfg.low_res_size]
    assert "LayerNormalization" in op_types(graphs.decoder)
    # no image-size inputs: everything about the original image stays outside the graph
    assert not any("size" in i.name for i in m.graph.input)


def test_compare_with_ort_helper(graphs, model_and_id):
    diffs = compare_with_ort(model_and_id[0], graphs, prompts=5)
    assert set(diffs) == set(ENCODER_OUTPUTS) | set(DECODER_OUTPUTS)
    assert diffs["embeddings"] < 1e-4 and diffs["low_res_logits"] < 1e-3


def test_encoder_ort_matches_torch_on_real_image(graphs, model_and_id, astronaut):
    from litesam_ros.model.geometry import Geometry

    model = model_and_id[0]
    cfg = model.config
    x = Geometry.of(cfg).preprocess(astronaut)
    sess = ort.InferenceSession(str(graphs.encoder), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"image": x.numpy()})
    with torch.no_grad():
        emb, props = model.encode(x)
    np.testing.assert_allclose(got[0], emb.numpy(), atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(got[2], props.scores.numpy(), atol=1e-4)
    # proposals: same peaks (order can swap only between near-equal scores)
    same = (got[1] == props.points.numpy()).all(-1).mean()
    assert same > 0.95
    assert got[3].dtype == np.int64


@pytest.mark.parametrize("p,k", [(1, 1), (1, 2), (5, 2), (5, 3), (70, 4)])
def test_decoder_dynamic_prompts_match_torch(graphs, model_and_id, p, k):
    model = model_and_id[0]
    cfg = model.config
    g = torch.Generator().manual_seed(p * 10 + k)
    emb = torch.randn(1, cfg.embed_dim, cfg.embedding_size, cfg.embedding_size, generator=g)
    coords = torch.rand(p, k, 2, generator=g) * cfg.image_size
    labels = torch.randint(0, 2, (p, k), generator=g).float()
    if k >= 3:
        labels[:, -2:] = torch.tensor([2.0, 3.0])
    else:
        labels[:, -1] = -1.0
    sess = ort.InferenceSession(str(graphs.decoder), providers=["CPUExecutionProvider"])
    got_logits, got_iou = sess.run(None, {"image_embeddings": emb.numpy(),
                                          "point_coords": coords.numpy(),
                                          "point_labels": labels.numpy()})
    with torch.no_grad():
        logits, iou = model.decode(emb, coords, labels)
    assert got_logits.shape == (p, logits.shape[1], cfg.low_res_size, cfg.low_res_size)
    np.testing.assert_allclose(got_logits, logits.numpy(), atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(got_iou, iou.numpy(), atol=1e-4)


def _image_projections(path, tokens: int, width: int) -> list[str]:
    """Tensors of the graph shaped [..., tokens, width] (shape inference, static last dims)."""
    m = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    found = []
    for v in list(m.graph.value_info) + list(m.graph.output):
        dims = _dims(v)
        if len(dims) >= 2 and dims[-2:] == [tokens, width]:
            found.append(v.name)
    return found


def test_decoder_graph_projects_no_image_token_into_the_attention_width(graphs, model_and_id):
    """The export reassociates the cross-attentions onto the prompt tokens
    (model/attention_fold.py): no image token is projected to the attention's internal width,
    which SAM's form does 8 times per call (q/k/v projections of the image side)."""
    cfg = model_and_id[0].config
    width = model_and_id[0].mask_decoder.transformer.final_attn_token_to_image.q_proj.out_features
    assert _image_projections(graphs.decoder, cfg.embedding_size ** 2, width) == []
