"""Tiny teacher (file, random weights) and student configs for the distillation tests."""
from __future__ import annotations

from typing import Any

import torch

import numpy as np

from conftest import tiny_model_config
from litesam_ros.model import build_model, get_config, save_checkpoint
from litesam_ros.model.geometry import Geometry
from litesam_ros.training.data.unlabeled import UnlabeledImages
from litesam_ros.training.distill.config import DistillConfig
from litesam_ros.training.distill.embedding_align import align_embedding
from litesam_ros.training.distill.run import StepBatches
from litesam_ros.training.distill.sami import random_masking

EV = {"points_per_side": 3, "pred_iou_thresh": 0.0, "stability_thresh": 0.0}


def teacher_file(tmp_path) -> str:
    """A shrunk Lite-SAM at 128 px (8x8 grid) with random weights, saved as a checkpoint."""
    path = str(tmp_path / "teacher.pt")
    cfg = get_config("lite_sam_r320").replace(
        name="tiny_teacher", image_size=128, embed_dim=32, stage_dims=(8, 16, 16, 32),
        stage_depths=(1, 1, 1, 1), ppn_dim=16, ppn_blocks=1, decoder_heads=2,
        decoder_mlp_dim=64, iou_head_hidden_dim=32, ppn_top_n=16)
    torch.manual_seed(5)
    save_checkpoint(build_model(cfg), path)
    return path


def student_config() -> dict:
    """The tiny test student at 96 px (6x6 grid: 8 -> 6 is not an integer ratio)."""
    d = dict(tiny_model_config())
    d["image_size"] = 96
    return d


def distill_config(tmp_path, teacher: str, recipe: str, **kw: Any) -> DistillConfig:
    base: dict = dict(recipe=recipe, teacher=teacher, student=student_config(),
                      checkpoint=str(tmp_path / f"{recipe}.pt"),
                      data={"builtin": ["skimage"], "limit": 2, "max_side": 96},
                      cache_dir=str(tmp_path / "cache"), shard_size=2, steps=6, batch_size=2,
                      lr=3e-3, warmup_steps=1, progress=False, ckpt_every_seconds=0,
                      log_every=1, log_file=str(tmp_path / f"{recipe}.jsonl"),
                      prompts_per_image=2, candidate_factor=2, hard_rounds=1, everything=EV,
                      train={"prompts_per_image": 2})
    base.update(kw)
    return DistillConfig(**base)


def step_inputs(cfg: DistillConfig, student: Any, t: Any, seed: int) -> dict[str, Any]:
    """The first step's keyword arguments for the recipe's loss module (on the CPU), as
    distill() builds them, with the RNG ``np.random.default_rng(seed)``."""
    gs, gt = Geometry.of(student.config), Geometry.of(t.config)
    b = StepBatches(UnlabeledImages(cfg.data), None, cfg, 0, 1, gs, gt)[0]
    with torch.no_grad():
        embs = [t.encode_image(x[None])[0] for x in b["teacher_in"]]
    e_s = student.config.embedding_size
    al = [align_embedding(e, gt, gs, e_s, hw) for e, hw in zip(embs, b["hw"])]
    rng = np.random.default_rng(seed)
    kw = dict(images=torch.stack(b["images"]), target=torch.stack([a[0] for a in al]),
              weight=torch.stack([a[1] for a in al]), teacher_emb=embs, orig_hw=b["hw"], rng=rng)
    if cfg.recipe == "sami":
        kw["masked"] = random_masking(rng, len(embs), e_s, cfg.mask_ratio)
    return kw
