"""Sub-cell AutoPPN offsets (config ``ppn_offsets``): the head's output, the points it gives,
static ONNX export with ONNX Runtime parity, checkpoints with and without the head, and
checkpoints written before the head existed (the shipped weights saved without it), which
keep proposing cell centres."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from litesam_ros.model import (SamModel, build_model, load_checkpoint, load_model,
                               read_checkpoint_header, save_checkpoint, select_proposals)

STRIDE = 16.0


def _offset_model(make_tiny_config, seed: int = 0) -> SamModel:
    """Tiny model with an offset head whose output varies (the last layer starts at zero,
    which would put every point at its cell centre)."""
    torch.manual_seed(seed)
    model = build_model(make_tiny_config(ppn_offsets=True)).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_scale" in name:
                p.fill_(0.5)
        assert model.autoppn is not None and model.autoppn.offset_head is not None
        last = model.autoppn.offset_head[2]
        last.weight.normal_(0, 2.0)
        last.bias.normal_(0, 1.0)
        # a flat heatmap would make NMS keep plateaus; make the peaks data-dependent
        model.autoppn.heatmap_head[2].weight.normal_(0, 1.0)
    return model


def test_offset_head_shapes_bounds_and_zero_start(make_tiny_config) -> None:
    torch.manual_seed(0)
    plain = build_model(make_tiny_config()).eval()
    torch.manual_seed(0)
    with_off = build_model(make_tiny_config(ppn_offsets=True)).eval()
    assert plain.autoppn is not None and with_off.autoppn is not None
    assert not plain.autoppn.has_offsets and with_off.autoppn.has_offsets
    extra = set(with_off.state_dict()) - set(plain.state_dict())
    assert extra and all(k.startswith("autoppn.offset_head.") for k in extra)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        _, maps = with_off.encode_maps(x)
        _, plain_maps = plain.encode_maps(x)
    assert plain_maps.offsets is None
    assert maps.offsets is not None and maps.offsets.shape == (2, 3, 4, 4, 2)  # [B,G,E,E,2]
    # a fresh head starts at the cell centres: the same proposals as a head without offsets
    assert torch.all(maps.offsets == 0.5)
    with_off.load_state_dict(plain.state_dict(), strict=False)
    with torch.no_grad():
        a = plain.encode(x)[1]
        b = with_off.encode(x)[1]
    assert a is not None and b is not None
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    # trained (here: random) offsets stay strictly inside the cell
    model = _offset_model(make_tiny_config)
    with torch.no_grad():
        offs = model.encode_maps(x)[1].offsets
    assert offs is not None and 0 < float(offs.min()) and float(offs.max()) < 1
    assert float(offs.std()) > 0.05


def test_points_take_the_offset_of_the_selected_group_and_cell() -> None:
    e = 4
    hm = torch.zeros(1, 3, e, e)
    hm[0, 0, 1, 2] = 0.9  # small group, cell (x=2, y=1)
    hm[0, 2, 1, 2] = 0.6  # large group, same cell
    hm[0, 1, 3, 0] = 0.7  # medium group, cell (x=0, y=3)
    offsets = torch.full((1, 3, e, e, 2), 0.5)
    offsets[0, 0, 1, 2] = torch.tensor([0.1, 0.8])
    offsets[0, 2, 1, 2] = torch.tensor([0.9, 0.2])
    offsets[0, 1, 3, 0] = torch.tensor([0.25, 0.75])
    boxes = torch.zeros(1, e, e, 4)
    p = select_proposals(hm, boxes, STRIDE, top_n=4, offsets=offsets)
    assert p.scores[0, :3].tolist() == pytest.approx([0.9, 0.7, 0.6])
    assert p.groups[0, :3].tolist() == [0, 1, 2]
    expected = [[(2 + 0.1) * 16, (1 + 0.8) * 16], [(0 + 0.25) * 16, (3 + 0.75) * 16],
                [(2 + 0.9) * 16, (1 + 0.2) * 16]]
    assert torch.allclose(p.points[0, :3], torch.tensor(expected))
    assert torch.count_nonzero(p.points[0, 3]) == 0  # padding stays zero
    centres = select_proposals(hm, boxes, STRIDE, top_n=4)  # no offsets: cell centres
    assert centres.points[0, :3].tolist() == [[40.0, 24.0], [8.0, 56.0], [40.0, 24.0]]


def test_constructed_small_object_is_hit_by_the_offset_point_not_the_cell_centre() -> None:
    """A 7-px disc near a cell's corner: the targets a head with offsets learns put the point
    inside it; the cell centre that a head without offsets proposes lies outside."""
    from litesam_ros.training.supervised.targets import build_ppn_targets

    S, e = 64, 4
    yy, xx = np.mgrid[:S, :S]
    disc = (xx - 19) ** 2 + (yy - 28) ** 2 <= 3 ** 2  # cell (x=1, y=1), centre (24, 24)
    assert not disc[24, 24]
    t = build_ppn_targets(disc[None], grid=e)
    heat = torch.from_numpy(t.heatmap)[None]
    offsets = torch.from_numpy(t.offset)[None]
    boxes = torch.zeros(1, e, e, 4)
    with_off = select_proposals(heat, boxes, STRIDE, top_n=1, offsets=offsets)
    centre = select_proposals(heat, boxes, STRIDE, top_n=1)
    x, y = with_off.points[0, 0].tolist()
    assert disc[int(y), int(x)] and abs(x - 19.5) <= 1 and abs(y - 28.5) <= 1
    cx, cy = centre.points[0, 0].tolist()
    assert (cx, cy) == (24.0, 24.0) and not disc[int(cy), int(cx)]


def test_onnx_export_is_static_and_ort_points_match_torch(make_tiny_config,
                                                         tmp_path: Path) -> None:
    """The project's exporter and ONNX Runtime backend: the offset decoding is inside the
    encoder graph, so ORT (and TensorRT, same graph) return torch's sub-cell points."""
    pytest.importorskip("onnxruntime")
    import onnx

    from litesam_ros.engines.onnx_export import export_model, op_types
    from litesam_ros.engines.ort_backend import OrtBackend
    from litesam_ros.engines.torch_backend import TorchBackend

    model = _offset_model(make_tiny_config)
    graphs = export_model(model, tmp_path)
    g = onnx.load(str(graphs.encoder)).graph
    dims = {o.name: [d.dim_value if d.HasField("dim_value") else d.dim_param
                     for d in o.type.tensor_type.shape.dim] for o in g.output}
    assert dims["points"] == [1, 16, 2] and dims["scores"] == [1, 16]  # static N = top_n
    assert "NonZero" not in op_types(graphs.encoder) and "Loop" not in op_types(graphs.encoder)
    ort_b = OrtBackend(graphs.encoder, graphs.decoder, model.config, threads=1)
    torch_b = TorchBackend(model, device="cpu", threads=1)
    torch.manual_seed(1)
    for _ in range(3):
        image = torch.randn(1, 3, 64, 64)
        got, want = ort_b.encode(image), torch_b.encode(image)
        assert want.points is not None and got.points is not None
        assert want.scores is not None and got.scores is not None
        assert torch.allclose(got.scores, want.scores, atol=1e-5)
        assert torch.allclose(got.points, want.points, atol=1e-3)
        valid = want.scores[0] > 0
        frac = (want.points[0, valid] / STRIDE) % 1.0
        assert valid.any() and float((frac - 0.5).abs().max()) > 0.05  # not cell centres


def test_checkpoints_say_which_head_they_have(make_tiny_config, tmp_path: Path) -> None:
    from litesam_ros.apps.model_cli import main as model_cli

    model = _offset_model(make_tiny_config)
    path = tmp_path / "with_offsets.pt"
    save_checkpoint(model, path)
    cfg, _ = read_checkpoint_header(path)
    assert cfg.ppn_offsets
    loaded, _ = load_checkpoint(path)
    assert loaded.autoppn is not None and loaded.autoppn.has_offsets
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        a, b = model.encode(x)[1], loaded.encode(x)[1]
    assert a is not None and b is not None
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    # a file written before the field existed: no ppn_offsets in its config, no offset head
    torch.manual_seed(0)
    old_model = build_model(make_tiny_config())
    payload = {"format": "litesam_ros.model.checkpoint", "version": 2,
               "config_name": "tiny_test",
               "config": {k: v for k, v in old_model.config.to_dict().items()
                          if k != "ppn_offsets"},
               "state_dict": dict(old_model.state_dict()), "metadata": {}}
    old_path = tmp_path / "old.pt"
    torch.save(payload, old_path)
    old, _ = load_checkpoint(old_path)
    assert not old.config.ppn_offsets and old.autoppn is not None
    assert not old.autoppn.has_offsets
    assert model_cli(["info", str(path)]) == 0
    assert model_cli(["info", str(old_path)]) == 0


def test_info_names_the_head(make_tiny_config, tmp_path: Path, capsys) -> None:
    from litesam_ros.apps.model_cli import main as model_cli

    for offsets, words in ((True, "sub-cell offsets"), (False, "cell centres")):
        path = tmp_path / f"m{offsets}.pt"
        save_checkpoint(build_model(make_tiny_config(ppn_offsets=offsets)), path)
        assert model_cli(["info", str(path)]) == 0
        assert words in capsys.readouterr().out


def _old_proposals(heat_logits: torch.Tensor, boxes: torch.Tensor, cfg) -> tuple:
    """The proposals as they were computed before offsets existed, written out independently:
    Point-NMS on sigmoid(logits), scores under min_score dropped, top-N over groups x cells,
    points at cell centres, boxes of the peak cell clamped to the frame, padding zeroed."""
    hm = torch.sigmoid(heat_logits)[0]  # [G,E,E]
    g, e, _ = hm.shape
    k = cfg.ppn_nms_kernel
    peak = hm == torch.nn.functional.max_pool2d(hm[None], k, 1, k // 2)[0]
    sc = torch.where(peak & (hm >= cfg.ppn_min_score), hm, torch.zeros_like(hm))
    s, idx = sc.flatten().topk(cfg.ppn_top_n)
    grp, cell = idx // (e * e), idx % (e * e)
    pts = torch.stack(((cell % e).float() + 0.5, (cell // e).float() + 0.5), 1) * STRIDE
    bx = boxes[0].reshape(-1, 4)[cell].clamp(0, cfg.image_size)
    keep = (s > 0).float()[:, None]
    return pts * keep, s, torch.where(s > 0, grp, torch.zeros_like(grp)), bx * keep


def test_checkpoints_without_offsets_keep_loading_and_propose_as_before(tmp_path: Path) -> None:
    """A checkpoint written before the offset head existed (here: the shipped weights saved
    in a config with ppn_offsets false, the format the demo weights had until 2026-12-02)
    loads exactly, and its proposals are the old algorithm's (cell centres). Put into the
    registry config (offset head fresh, last layer zero) it proposes the same points."""
    from litesam_ros.model import get_config
    from litesam_ros.model.geometry import Geometry
    from litesam_ros.model.resources import DEMO_WEIGHTS, find_shared_file
    from litesam_ros.model import build_model
    from litesam_ros.training.init_weights import transfer_weights
    from litesam_ros.training.data.synthetic import SyntheticScenes

    shipped = find_shared_file("weights", DEMO_WEIGHTS)
    assert shipped is not None
    source = load_model(shipped).model
    old_model = build_model(source.config.replace(ppn_offsets=False))
    old_model.load_state_dict({k: v for k, v in source.state_dict().items()
                               if not k.startswith("autoppn.offset_head.")})
    weights = tmp_path / "no_offsets.pt"
    save_checkpoint(old_model, weights)
    cfg, _ = read_checkpoint_header(weights)
    assert not cfg.ppn_offsets
    loaded = load_model(weights)
    model = loaded.model.eval()
    assert model.autoppn is not None and not model.autoppn.has_offsets
    assert not any("offset_head" in k for k in model.state_dict())
    scene = SyntheticScenes()[10_000_000]
    x = Geometry.of(model.config).preprocess(scene.image)
    with torch.no_grad():
        emb, maps = model.encode_maps(x)
        props = model.encode(x)[1]
    assert props is not None and maps.offsets is None
    want = _old_proposals(maps.heatmap_logits, maps.boxes, model.config)
    for name, w, got in zip(("points", "scores", "groups", "boxes"), want, props):
        assert torch.equal(got[0], w), name
    assert int((props.scores > 0).sum()) > 5
    # the same weights in the registry's config with offsets: identical until the head trains
    new_cfg = get_config("lite_sam_r320")
    assert new_cfg.ppn_offsets
    upgraded = build_model(new_cfg)
    _, fresh = transfer_weights(model.state_dict(), upgraded, str(weights))
    assert fresh and all(k.startswith("autoppn.offset_head.") for k in fresh)
    with torch.no_grad():
        again = upgraded.eval().encode(x)[1]
    assert again is not None
    assert all(torch.equal(p, q) for p, q in zip(props, again))
