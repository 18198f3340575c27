"""Sub-cell offset targets (distance-transform point per positive cell), their loss, and the
trainer learning them on a fixed scene."""
import json

import numpy as np
import pytest
import torch

from litesam_ros.training.losses import offset_loss
from litesam_ros.training.supervised.targets import build_ppn_targets


def _disc(S, cx, cy, r):
    yy, xx = np.mgrid[:S, :S]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def test_disc_off_the_cell_centre_gets_its_centre_as_offset():
    S, grid = 256, 16  # cells of 16 px; small objects: at most 12.8 px
    m = _disc(S, 37, 86, 4)  # cell (x=2, y=5) spans 32..47 x 80..95, centre (40, 88)
    t = build_ppn_targets(m[None], grid=grid)
    assert t.groups.tolist() == [0]  # small
    g, cy, cx = 0, 86 // 16, 37 // 16
    assert t.offset_weight[g, cy, cx] == pytest.approx(1.0)
    ox, oy = t.offset[g, cy, cx]
    # the point (cell + offset) * stride is the disc's centre pixel (its centre: + 0.5)
    assert abs((cx + ox) * 16 - 37.5) <= 1.0 and abs((cy + oy) * 16 - 86.5) <= 1.0
    assert abs((cx + ox) * 16 - 40) > 2  # not the cell centre
    # every weighted cell's point lies on the object; other cells carry no weight
    for gg, yy, xx in zip(*np.nonzero(t.offset_weight)):
        px, py = (xx + t.offset[gg, yy, xx, 0]) * 16, (yy + t.offset[gg, yy, xx, 1]) * 16
        assert m[int(py), int(px)]
    assert (t.offset_weight > 0).sum() == (t.heatmap > 0).sum()
    assert np.all(t.offset[t.offset_weight == 0] == 0.5)


def test_each_group_and_cell_takes_its_own_and_the_smallest_instance():
    S = 256
    big = np.zeros((S, S), bool)
    big[8:120, 8:120] = True  # large, peak near the centre
    a = _disc(S, 19, 22, 5)   # two small discs peaking in the same cell (x=1, y=1)
    b = _disc(S, 28, 28, 3)
    big[8:160, 8:160] = True
    t = build_ppn_targets(np.stack([big, a, b]), grid=16)
    assert t.groups.tolist() == [2, 0, 0]
    ox, oy = t.offset[0, 1, 1]
    assert abs((1 + ox) * 16 - 28.5) <= 1 and abs((1 + oy) * 16 - 28.5) <= 1  # the smaller, b
    px, py = t.peaks[0]
    cx, cy = int(px) // 16, int(py) // 16
    lx, ly = t.offset[2, cy, cx]
    assert abs((cx + lx) * 16 - (px + 0.5)) < 1e-4 and abs((cy + ly) * 16 - (py + 0.5)) < 1e-4


def test_ignored_cells_carry_no_offset_weight():
    S = 64
    m = _disc(S, 40, 40, 6)
    ig = np.zeros((S, S), bool)
    ig[:16, :16] = True
    t = build_ppn_targets(m[None], grid=4, ignore=ig)
    assert t.valid[0, 0] == 0 and t.offset_weight[:, 0, 0].sum() == 0
    assert t.offset_weight.sum() > 0


def test_offset_loss_counts_weighted_cells_per_group():
    target = torch.full((1, 3, 4, 4, 2), 0.5)
    weight = torch.zeros(1, 3, 4, 4)
    weight[0, 0, 1, 1] = 1.0
    weight[0, 2, :, :] = 1.0
    pred = target.clone()
    assert float(offset_loss(pred, target, weight)) == 0.0
    pred[0, 1] = 0.9  # a group without positives: no loss
    pred[0, 0, 2, 2] = 0.9  # an unweighted cell: no loss
    assert float(offset_loss(pred, target, weight)) == 0.0
    pred[0, 0, 1, 1, 0] = 0.8  # the small group's only cell, 0.3 off in x
    small = float(offset_loss(pred, target, weight))
    assert small == pytest.approx(0.3 - 0.025)  # smooth L1, beta 0.05
    pred[0, 2, 0, 0, 0] = 0.8  # one of the large group's 16 cells, as far off
    assert float(offset_loss(pred, target, weight)) == pytest.approx(small * (1 + 1 / 16))


def test_training_the_head_on_a_fixed_scene_lowers_the_offset_loss(tmp_path):
    from litesam_ros.training.supervised.trainer import train

    from conftest import tiny_train_config

    log = tmp_path / "log.jsonl"
    cfg = tiny_train_config(
        tmp_path, steps=40, lr=1e-2, warmup_steps=1, min_lr_frac=1.0, log_file=str(log),
        freeze=["image_encoder", "prompt_encoder", "mask_decoder"],
        data={"type": "synthetic", "length": 1,
              "synthetic": {"height": 128, "width": 128, "min_objects": 6,
                            "max_objects": 6}})  # one scene: 5 objects, 1 small
    assert cfg.offset_weight > 0
    res = train(cfg, resume=False)
    assert res["trains"] == ["autoppn"]
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    first, last = rows[0]["offset"], rows[-1]["offset"]
    assert first > 0.02 and last < 0.5 * first, (first, last)


def test_an_old_head_starts_its_offsets_fresh(tmp_path):
    """init_from a checkpoint without the offset head into a config with it: every other
    tensor loads exactly, the offset head starts at zero (cell centres) and trains."""
    from litesam_ros.model import build_model, get_config, save_checkpoint
    from litesam_ros.training.init_weights import init_model

    from conftest import tiny_model_config

    cfg = get_config("lite_sam_r320").from_dict(tiny_model_config())
    torch.manual_seed(0)
    old = build_model(cfg.replace(ppn_offsets=False))
    path = tmp_path / "old.pt"
    save_checkpoint(old, path)
    model, report = init_model(str(path), cfg)
    assert model.config.ppn_offsets and report.fresh == {"autoppn": 4}
    state = model.state_dict()
    for k, v in old.state_dict().items():
        assert torch.equal(state[k], v), k
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        a, b = old.eval().encode(x)[1], model.eval().encode(x)[1]
    assert all(torch.equal(p, q) for p, q in zip(a, b))
