"""Output shapes of encode/decode for every registry config, and real values on small inputs."""
from __future__ import annotations

import pytest
import torch

from litesam_ros.model import SamModel, build_model, get_config, list_models


@pytest.mark.parametrize("name", list_models())
def test_shapes_every_registry_config(name: str) -> None:
    """Built on the meta device: exact shapes and dtypes without computing 10-40 GMACs."""
    cfg = get_config(name)
    s, c, e, low, n = (cfg.image_size, cfg.embed_dim, cfg.embedding_size, cfg.low_res_size,
                       cfg.ppn_top_n)
    with torch.device("meta"):
        model = build_model(cfg).eval()
        emb, props = model.encode(torch.zeros(1, 3, s, s))
        logits, iou = model.decode(emb[:1], torch.zeros(5, 3, 2), torch.zeros(5, 3))
    assert emb.shape == (1, c, e, e)
    assert logits.shape == (5, 4, low, low) and iou.shape == (5, 4)
    if not cfg.autoppn:
        assert props is None
        return
    assert props.points.shape == (1, n, 2) and props.scores.shape == (1, n)
    assert props.groups.shape == (1, n) and props.groups.dtype == torch.int64
    assert props.boxes.shape == (1, n, 4)


def test_real_forward_r320() -> None:
    torch.manual_seed(0)
    model = build_model("lite_sam_r320").eval()
    cfg = model.config
    with torch.no_grad():
        emb, props = model.encode(torch.randn(1, 3, 320, 320))
        coords = torch.tensor([[[100.0, 120.0], [0.0, 0.0]], [[10.0, 20.0], [200.0, 250.0]]])
        labels = torch.tensor([[1.0, -1.0], [2.0, 3.0]])
        logits, iou = model.decode(emb, coords, labels)
    assert emb.shape == (1, 256, 20, 20) and torch.isfinite(emb).all()
    assert logits.shape == (2, 4, 80, 80) and iou.shape == (2, 4)
    assert torch.isfinite(logits).all() and torch.isfinite(iou).all()
    s = props.scores[0]
    assert (s[:-1] >= s[1:]).all() and s.min() >= 0 and s.max() <= 1
    live = s > 0
    assert live.any()
    assert ((props.groups[0] >= 0) & (props.groups[0] < cfg.ppn_groups)).all()
    pts, boxes = props.points[0][live], props.boxes[0][live]
    assert ((pts > 0) & (pts < 320)).all()
    # Points sit at cell centres of the stride-16 grid.
    assert torch.equal(torch.remainder(pts - 8, 16), torch.zeros_like(pts))
    assert ((boxes >= 0) & (boxes <= 320)).all()
    assert (boxes[:, 0] <= pts[:, 0]).all() and (pts[:, 0] <= boxes[:, 2]).all()
    assert (boxes[:, 1] <= pts[:, 1]).all() and (pts[:, 1] <= boxes[:, 3]).all()


def test_encode_raw_matches_encode(tiny_model: SamModel) -> None:
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        emb, heat, boxes = tiny_model.encode_raw(x)
        emb2, props = tiny_model.encode(x)
    assert torch.equal(emb, emb2)
    assert heat.shape == (2, 3, 4, 4) and boxes.shape == (2, 4, 4, 4)
    # the best proposal is the best heatmap peak, with its own box
    b = 1
    flat = torch.sigmoid(heat[b]).flatten()
    top = int(flat.argmax())
    g, pos = divmod(top, 16)
    assert props.scores[b, 0] == pytest.approx(float(flat[top]))
    assert int(props.groups[b, 0]) == g
    assert torch.allclose(props.boxes[b, 0], boxes[b].reshape(16, 4)[pos].clamp(0, 64))


def test_bad_input_shapes_raise(tiny_model: SamModel) -> None:
    with pytest.raises(ValueError, match=r"images must be \[B,3,64,64\]"):
        tiny_model.encode(torch.zeros(1, 3, 32, 32))
    emb = torch.zeros(1, 32, 4, 4)
    with pytest.raises(ValueError, match="point_labels"):
        tiny_model.decode(emb, torch.zeros(2, 3, 2), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="image_embeddings"):
        tiny_model.decode(torch.zeros(3, 32, 4, 4), torch.zeros(2, 1, 2), torch.zeros(2, 1))
