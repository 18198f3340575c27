"""Training-time init and schedules: tied decoder attention, box-prompt ramp."""
import torch

from litesam_ros.model import build_model
from litesam_ros.training.attention_init import tie_attention_qk
from litesam_ros.training.init_weights import config_for
from litesam_ros.training.supervised.trainer import TrainConfig, box_prob_at


def _point_to_grid_attention(model, xy):
    """Attention weights [E*E] of the first token->image layer for one point's encoding,
    against the bare positional grid (what the layer sees before any content)."""
    pe = model.prompt_encoder
    att = model.mask_decoder.transformer.layers[0].cross_attn_token_to_image
    size = pe.input_size
    q = pe.pe_layer.encode((torch.tensor([[xy]], dtype=torch.float32) + 0.5) / size)  # [1,1,C]
    k = pe.get_dense_pe().flatten(2).transpose(1, 2)  # [1,E*E,C]
    qh = att._separate_heads(att.q_proj(q))
    kh = att._separate_heads(att.k_proj(k))
    w = torch.softmax(qh @ kh.transpose(-2, -1) / att.head_dim ** 0.5, dim=-1)
    return w.mean(1)[0, 0]  # mean over heads


def test_tied_qk_init_makes_a_point_attend_to_its_own_cell():
    torch.manual_seed(0)
    model = build_model(config_for("lite_sam_r320", 160))
    e = model.config.embedding_size
    cells = [(1, 1), (3, 7), (8, 2), (6, 6)]
    # untied (SAM's default init): attention is not centred on the point's cell
    untied_hits = sum(int(_point_to_grid_attention(model, ((c + .5) * 16, (r + .5) * 16))
                          .argmax()) == r * e + c for r, c in cells)
    n = tie_attention_qk(model, 3.0)
    assert n == 7  # 2 blocks x 3 attentions + the final token->image attention
    for mod in model.mask_decoder.transformer.modules():
        if hasattr(mod, "k_proj"):
            assert torch.equal(mod.k_proj.weight, mod.q_proj.weight)
    for r, c in cells:
        w = _point_to_grid_attention(model, ((c + .5) * 16, (r + .5) * 16))
        assert int(w.argmax()) == r * e + c
        assert w.max() > 5.0 / (e * e)  # clearly peaked, not near uniform
    assert untied_hits < len(cells)


def test_box_prob_ramps_linearly_then_holds():
    cfg = TrainConfig(box_prob=0.5, box_prob_ramp_steps=100)
    assert box_prob_at(cfg, 0) == 0.0
    assert box_prob_at(cfg, 50) == 0.25
    assert box_prob_at(cfg, 100) == 0.5 and box_prob_at(cfg, 10_000) == 0.5
    assert box_prob_at(TrainConfig(box_prob=0.3), 0) == 0.3


def test_yaml_exponent_without_dot_is_still_a_number(tmp_path):
    import pytest

    from litesam_ros.training.supervised.trainer import coerce_number, load_config

    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("lr: 3e-5\nsteps: 1e3\nmodel: lite_sam_r320\n")
    cfg = load_config(str(cfg_file))
    assert cfg.lr == 3e-5 and isinstance(cfg.lr, float)
    assert cfg.steps == 1000 and isinstance(cfg.steps, int)
    assert cfg.model == "lite_sam_r320"  # strings stay strings
    with pytest.raises(ValueError, match="lr: 'fast' is not a number"):
        coerce_number("lr", 1e-3, "fast")
