"""AutoPPN on a foreign encoder: init_from official-format files, ``freeze``, frozen bits stay.

Small real models (SAM ViT, TinyViT with BatchNorm, EfficientSAM ViT) on synthetic scenes; the
"official" files are written here the way the official repositories write theirs (a bare state
dict without AutoPPN keys), or as this project's checkpoint where load_model only recognises the
published sizes (MobileSAM, EfficientSAM).
"""
from __future__ import annotations

import json
import logging
import math
from typing import Dict

import pytest
import torch

from conftest import tiny_train_config
from litesam_ros.model import (ModelConfig, SamModel, build_model, get_config, load_model,
                               save_checkpoint)
from litesam_ros.training.attention_init import attention_layers, tie_attention_qk
from litesam_ros.training.init_weights import init_model, resized
from litesam_ros.training.freeze import (PARTS, LossPaths, apply_freeze, normalise_freeze,
                                         set_train_mode)
from litesam_ros.training.supervised.trainer import TrainConfig, load_config, train

TINY_DECODER = dict(embed_dim=32, decoder_heads=2, decoder_mlp_dim=64, iou_head_hidden_dim=32)
TINY_PPN = dict(ppn_dim=16, ppn_blocks=1, ppn_top_n=16)


def sam_vit_config() -> ModelConfig:
    """SAM ViT, width 64, 2 blocks (windowed + global) at 128 px, with an AutoPPN head. The
    decoder is SAM's full-size one: load_model reads only the encoder sizes from SAM files."""
    return get_config("sam_vit_b_autoppn").replace(
        name="sam_vit_w64_d2_autoppn", image_size=128, stage_dims=(64,), stage_depths=(2,),
        stage_heads=(2,), stage_strides=(16,), window_sizes=(4,), global_attn_indexes=(1,),
        **TINY_PPN)


def tiny_vit_config() -> ModelConfig:
    return get_config("mobile_sam_autoppn").replace(
        name="tiny_tinyvit_autoppn", image_size=64, stage_dims=(16, 32, 32, 64),
        stage_depths=(1, 1, 1, 1), stage_heads=(1, 2, 2, 4), window_sizes=(4, 4, 4, 4),
        **TINY_DECODER, **TINY_PPN)


def efficient_sam_config() -> ModelConfig:
    return get_config("efficient_sam_vitt_autoppn").replace(
        name="tiny_esam_autoppn", image_size=64, stage_dims=(32,), stage_depths=(1,),
        stage_heads=(2,), **TINY_DECODER, **TINY_PPN)


def _without_head(cfg: ModelConfig, seed: int = 1) -> SamModel:
    """The head-less model of ``cfg`` with every tensor randomised (zeros-initialised ones
    too, and BatchNorm running statistics), so "unchanged" cannot hold by accident."""
    torch.manual_seed(seed)
    model = build_model(cfg.replace(name=cfg.name.replace("_autoppn", ""), autoppn=False))
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                t.add_(torch.rand_like(t) * 0.02 if "running_var" in name
                       else torch.randn_like(t) * 0.02)
            elif name.endswith("num_batches_tracked"):
                t.fill_(1000)
    return model


def official_file(tmp_path, cfg: ModelConfig) -> str:
    """``cfg`` without its head, saved as the official SAM repository does (bare state dict)."""
    path = str(tmp_path / "official.pth")
    state = _without_head(cfg).state_dict()
    assert not any(k.startswith("autoppn.") for k in state)
    torch.save(state, path)
    return path


def project_file(tmp_path, cfg: ModelConfig) -> str:
    path = str(tmp_path / "headless.pt")
    save_checkpoint(_without_head(cfg), path)
    return path


def _tensors(model: torch.nn.Module) -> Dict[str, torch.Tensor]:
    """Every parameter and buffer (non-persistent ones too), cloned."""
    out = {k: v.detach().clone() for k, v in model.named_parameters()}
    out.update({k: v.detach().clone() for k, v in model.named_buffers()})
    return out


def _run(tmp_path, cfg: ModelConfig, init_from: str, freeze, steps: int = 3, **kw):
    """Train ``steps`` steps; returns (result, initial tensors, trained model, state file)."""
    tc = tiny_train_config(tmp_path, model=cfg.to_dict(), init_from=init_from, freeze=freeze,
                           steps=steps, warmup_steps=1, lr=1e-2, **kw)
    torch.manual_seed(tc.seed)  # train() seeds the same way before building the model
    start, _ = init_model(init_from, tc.model, tc.image_size)
    res = train(tc)
    trained = load_model(tc.checkpoint).model
    state = torch.load(tc.state_file(), weights_only=True)
    return res, _tensors(start), trained, state, tc


def _check_frozen_and_trained(init: Dict[str, torch.Tensor], trained: torch.nn.Module,
                              state: dict, frozen) -> None:
    after = _tensors(trained)
    assert after.keys() == init.keys()
    trains = [p for p in PARTS if p not in frozen]
    for k, v in after.items():
        if k.split(".")[0] in frozen:
            assert torch.equal(v, init[k]), f"frozen {k} changed"
    for part in trains:
        names = [k for k, _ in getattr(trained, part).named_parameters(prefix=part)]
        changed = [k for k in names if not torch.equal(after[k], init[k])]
        assert len(changed) >= 0.8 * len(names), (part, len(changed), len(names))
    # the optimizer holds exactly the trainable parameters, in model order
    expect = [k for k, _ in trained.named_parameters() if k.split(".")[0] in trains]
    assert state["trainable"] == expect
    opt = state["optimizer"]
    assert sum(len(g["params"]) for g in opt["param_groups"]) == len(expect)
    assert [tuple(opt["state"][i]["exp_avg"].shape) for i in range(len(expect))] == \
        [tuple(after[k].shape) for k in expect]


def test_head_and_decoder_on_official_sam_file(tmp_path, caplog):
    cfg = sam_vit_config()
    path = official_file(tmp_path, cfg)
    assert load_model(path).kind == "sam"  # recognised by content, as a real SAM file
    file_state = torch.load(path, weights_only=True)
    with caplog.at_level(logging.INFO, logger="litesam_ros.training"):
        res, init, trained, state, tc = _run(tmp_path, cfg, path,
                                             ["image_encoder", "prompt_encoder"],
                                             prompts_per_image=2, batch_size=1)
    # every non-head tensor of the start model is the file's, exactly
    assert all(torch.equal(init[k], v) for k, v in file_state.items())
    assert res["step"] == 3 and res["trains"] == ["autoppn", "mask_decoder"]
    assert res["init"]["kind"] == "sam" and set(res["init"]["fresh"]) == {"autoppn"}
    assert set(res["init"]["loaded"]) == {"image_encoder", "prompt_encoder", "mask_decoder"}
    assert sum(res["init"]["loaded"].values()) == len(file_state)
    assert res["init"]["config_differences"] == []
    assert "starts fresh" in caplog.text and "autoppn" in caplog.text
    assert {"point", "box", "mask"} <= set(res["losses"])
    assert all(torch.isfinite(torch.tensor(v)) for v in res["losses"].values())
    _check_frozen_and_trained(init, trained, state, ["image_encoder", "prompt_encoder"])
    assert trained.config == cfg
    assert load_model(tc.checkpoint).metadata["init"]["source"] == path
    # resuming with another freeze would not fit the optimizer state: a clear error
    tc.steps, tc.freeze = 4, ["image_encoder"]
    with pytest.raises(ValueError, match="resume with the same freeze"):
        train(tc)


def test_head_only_on_tinyvit_keeps_batchnorm_statistics(tmp_path):
    cfg = tiny_vit_config()
    path = project_file(tmp_path, cfg)
    frozen = ["image_encoder", "prompt_encoder", "mask_decoder"]
    res, init, trained, state, _ = _run(tmp_path, cfg, path, frozen, steps=4)
    assert res["trains"] == ["autoppn"]
    assert "mask" not in res["losses"] and "point" in res["losses"]  # no decoder pass needed
    assert any("running_mean" in k for k in init)
    _check_frozen_and_trained(init, trained, state, frozen)
    # the check means something: in train() mode these BatchNorms would have moved
    model = build_model(cfg)
    apply_freeze(model, frozen)
    set_train_mode(model, frozen)
    assert not model.image_encoder.training and model.autoppn.training
    model.image_encoder.train()
    before = _tensors(model.image_encoder)
    model.image_encoder(torch.randn(2, 3, 64, 64))
    assert any(not torch.equal(v, before[k]) for k, v in _tensors(model.image_encoder).items())


def test_efficient_sam_geometry_and_fixed_prompt_points(tmp_path):
    cfg = efficient_sam_config()
    assert cfg.resize == "stretch" and cfg.prompt_points == 6
    path = project_file(tmp_path, cfg)
    res, init, trained, state, _ = _run(tmp_path, cfg, path, ["image_encoder"], steps=2)
    assert {"point", "box", "mask", "train_iou"} <= set(res["losses"])
    _check_frozen_and_trained(init, trained, state, ["image_encoder"])
    # EfficientSAM's ViT has size-free weights: another training size works ...
    small = resized(trained, 48)
    assert small.config.image_size == 48 and torch.equal(
        small.image_encoder.pos_embed, trained.image_encoder.pos_embed)
    # ... and its decoder attentions can be tied for a fresh start (qk_tied_init)
    assert tie_attention_qk(small, 2.0) == len(attention_layers(small)) > 0
    assert all(torch.equal(k.weight, q.weight) for q, k in attention_layers(small))


def test_headless_model_trains_masks_only_and_evaluates(tmp_path):
    path = project_file(tmp_path, efficient_sam_config())
    tc = tiny_train_config(tmp_path, model=None, init_from=path, steps=2)
    res = train(tc)  # model unset: the file's own (head-less) config
    assert res["trains"] == ["image_encoder", "prompt_encoder", "mask_decoder"]
    assert "mask" in res["losses"] and "point" not in res["losses"]
    assert load_model(tc.checkpoint).model.autoppn is None
    from litesam_ros.apps.train_cli import main

    out = tmp_path / "m.json"
    assert main(["eval", "--checkpoint", path, "--num", "2", "--top-n", "4", "--no-progress",
                 "--output", str(out)]) == 0
    m = json.loads(out.read_text())
    assert 0.0 <= m["box_miou"] <= 1.0 and math.isnan(m["recall@4"])  # no head: no proposals


def test_init_from_errors_are_clear(tmp_path):
    cfg = sam_vit_config()
    path = official_file(tmp_path, cfg)
    # SAM ViT weights depend on the input size
    with pytest.raises(ValueError, match=r"pos_embed.*image_size"):
        init_model(path, cfg.to_dict(), image_size=64)
    # another encoder width: the mis-shaped keys are named
    with pytest.raises(ValueError, match=r"mis-shaped keys \(image_encoder\."):
        init_model(path, cfg.replace(stage_dims=(32,)))
    # a head in the file but none in the config
    head_file = str(tmp_path / "with_head.pt")
    save_checkpoint(build_model(tiny_vit_config()), head_file)
    with pytest.raises(ValueError, match="has an AutoPPN head but model"):
        init_model(head_file, tiny_vit_config().replace(autoppn=False))
    # model unset: the file's own config, head-less; geometry changes are reported
    model, report = init_model(path)
    assert model.autoppn is None and report.fresh == {}
    _, report = init_model(path, cfg.replace(resize="stretch"))
    assert report.config_differences == ["resize (file: longest_side, model: stretch)"]


def test_freeze_validation(tmp_path):
    assert normalise_freeze(None) == [] and normalise_freeze("mask_decoder,autoppn") == [
        "autoppn", "mask_decoder"]
    with pytest.raises(ValueError, match=r"unknown module name\(s\) \['decoder'\]; valid names "
                                         r"are \['image_encoder', 'autoppn', 'prompt_encoder'"):
        normalise_freeze(["decoder"])
    with pytest.raises(ValueError, match="nothing would train"):
        normalise_freeze(list(PARTS))
    with pytest.raises(ValueError, match="unknown module"):
        TrainConfig.from_dict({"freeze": ["encoder"]})
    headless = build_model(tiny_vit_config().replace(autoppn=False))
    with pytest.raises(ValueError, match=r"has no \['autoppn'\]"):
        apply_freeze(headless, ["autoppn"])
    with pytest.raises(ValueError, match="freezes every module"):
        apply_freeze(headless, ["image_encoder", "prompt_encoder", "mask_decoder"])
    # a model without a head trains its masks only
    assert LossPaths.of(headless, ["image_encoder"]) == LossPaths(False, False, True)
    # YAML and --set
    f = tmp_path / "c.yaml"
    f.write_text("model: mobile_sam_autoppn\ninit_from: mobile_sam.pt\n"
                 "freeze: [prompt_encoder, image_encoder]\n")
    assert load_config(str(f)).freeze == ["image_encoder", "prompt_encoder"]
    from litesam_ros.apps.train_cli import main

    with pytest.raises(SystemExit, match="valid names are"):
        main(["train", "--config", str(f), "--set", "freeze=[image_encoder, bogus]"])
