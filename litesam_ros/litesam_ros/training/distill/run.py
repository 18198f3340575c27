"""``litesam-train distill``: a student SamModel learns from a teacher SamModel.

Same conventions as the trainer: the samples, masks and prompts of step ``t`` on rank ``r``
depend only on (seed, t, r) and the learning rate only on t, so resuming from ``<ckpt>`` +
``<ckpt>.state.pt`` (optimizer, step, RNG, the SAMI head) reproduces the same next step; DDP
under ``torchrun`` (gloo on CPU); rank 0 writes checkpoints in the model format with the
teacher's identity and the recipe under metadata ``distill``.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ...model import load_checkpoint
from ...model.geometry import Geometry
from ..checkpoints import save_model
from ..data.unlabeled import UnlabeledImages
from ..freeze import apply_freeze, set_train_mode, trainable_parameters
from ..loop import RunEnd, data_parallel, optimizer_step, write_state
from ..supervised.trainer import lr_at, start_run
from .config import DistillConfig
from .embedding_align import align_embedding
from .pseudo_labels import run_pseudo_labels
from .recipes import aux_module, build_step
from .sami import random_masking
from .student import build_cache, default_freeze, init_student, load_teacher
from .teacher_cache import TeacherCache

if TYPE_CHECKING:
    from litesam_ros.model import SamModel

logger = logging.getLogger(__name__)


class StepBatches(Dataset):
    """Item ``t`` = the batch of step ``t`` on this rank (loaded in DataLoader workers)."""

    def __init__(self, images: UnlabeledImages, cache: Optional[TeacherCache],
                 cfg: DistillConfig, rank: int, world: int, gs: Geometry, gt: Geometry) -> None:
        self.images, self.cache, self.cfg = images, cache, cfg
        self.rank, self.world, self.gs, self.gt = rank, world, gs, gt

    def __len__(self) -> int:
        return self.cfg.steps

    def __getitem__(self, step: int) -> Dict[str, Any]:
        cfg, n = self.cfg, len(self.images)
        base = (step * self.world + self.rank) * cfg.batch_size + cfg.seed * 7919
        out: Dict[str, List[Any]] = {"images": [], "hw": [], "keys": [], "emb": [],
                                     "teacher_in": []}
        j = 0
        tries = 0
        while len(out["keys"]) < cfg.batch_size:
            tries += 1
            if tries > 10 * cfg.batch_size + n:
                raise RuntimeError("no readable images in the data set")
            got = self.images.item((base + j) % n)
            j += 1
            if got is None:
                continue
            image, key = got
            emb = self.cache.get(key) if self.cache is not None else None
            out["images"].append(self.gs.preprocess(image)[0])
            out["hw"].append(image.shape[:2])
            out["keys"].append(key)
            out["emb"].append(emb)
            out["teacher_in"].append(self.gt.preprocess(image)[0] if emb is None else None)
        return out


def _identity(x: Any) -> Any:
    return x


def save_state(cfg: DistillConfig, model: SamModel, aux: Optional[nn.Module],
               opt: torch.optim.Optimizer, step: int, wall: float, meta: Dict[str, Any]) -> None:
    """Student checkpoint (model format, metadata ``distill``) + ``<ckpt>.state.pt``."""
    os.makedirs(os.path.dirname(os.path.abspath(cfg.checkpoint)), exist_ok=True)
    save_model(model, cfg.checkpoint, {"step": step, "train_wall_s": wall, **meta})
    st = {"optimizer": opt.state_dict(), "step": step, "wall": wall,
          "torch_rng": torch.get_rng_state(), "config": dataclasses.asdict(cfg),
          "aux": aux.state_dict() if aux is not None else None,
          "trainable": [n for n, _ in trainable_parameters(model)]}
    write_state(cfg.state_file(), st)


def distill(cfg: DistillConfig, resume: bool = True) -> Dict[str, Any]:
    """Run one recipe to ``cfg.steps``; returns step, wall time, last losses, the cache stats
    and the skipped (unreadable) image count."""
    if cfg.recipe == "pseudo_labels":
        return run_pseudo_labels(cfg, resume)
    rank, world, device = start_run(cfg.threads, cfg.device)
    cfg.validate()
    loaded = load_teacher(cfg.teacher, "cpu")
    teacher, teacher_id = loaded.model, loaded.model_id
    teacher.to(device)
    start, wall0, state = 0, 0.0, None
    if resume and os.path.exists(cfg.checkpoint):
        student, ck_meta = load_checkpoint(cfg.checkpoint, "cpu")
        info: Dict[str, Any] = {k: ck_meta[k] for k in ("init", "distill_history")
                                if k in ck_meta}
        if os.path.exists(cfg.state_file()):
            state = torch.load(cfg.state_file(), map_location="cpu", weights_only=False)
            start, wall0 = int(state["step"]), float(state.get("wall", 0.0))
    else:
        student, info = init_student(cfg, teacher)
    freeze = cfg.freeze if cfg.freeze is not None else default_freeze(cfg.recipe, student)
    trains = apply_freeze(student, freeze)
    torch.manual_seed(cfg.seed + 1)  # the SAMI head's init
    step_mod = build_step(cfg.recipe, student, teacher, cfg)
    aux = aux_module(step_mod)
    step_mod.to(device)
    set_train_mode(student, freeze)
    params = trainable_parameters(student)
    if state is not None and state["trainable"] != [n for n, _ in params]:
        raise ValueError(f"{cfg.state_file()} was written with other trainable parameters; "
                         "resume with the same freeze or use --no-resume")
    if aux is not None and state is not None and state.get("aux") is not None:
        aux.load_state_dict(state["aux"])
    opt_params = [p for _, p in params] + (list(aux.parameters()) if aux is not None else [])
    opt = torch.optim.AdamW(opt_params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if state is not None:
        opt.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
    meta: Dict[str, Any] = {"distill": {"recipe": cfg.recipe, "teacher": str(cfg.teacher),
                        "teacher_id": teacher_id, "teacher_config": teacher.config.name,
                        "student": cfg.student if isinstance(cfg.student, str) else
                        student.config.name, "freeze": freeze,
                        "config": dataclasses.asdict(cfg)}, **info}
    images = UnlabeledImages(cfg.data)
    cache_stats: Dict[str, Any] = {}
    cache = None
    if cfg.use_cache:
        cache, cache_stats = build_cache(cfg, teacher, teacher_id, images, rank, world)
    gs, gt = Geometry.of(student.config), Geometry.of(teacher.config)
    e_s = int(student.config.embedding_size)
    runner = data_parallel(step_mod, device, world)
    loader = DataLoader(StepBatches(images, cache, cfg, rank, world, gs, gt), batch_size=None,
                        sampler=list(range(start, cfg.steps)), num_workers=cfg.workers,
                        collate_fn=_identity)
    end = RunEnd(cfg, start, wall0, rank, world,
                 lambda done, wall: save_state(cfg, student, aux, opt, done, wall, meta),
                 wall_digits=2)
    last: Dict[str, float] = {}
    bar = tqdm(total=cfg.steps, initial=start, disable=not cfg.progress or rank != 0,
               desc=f"distill {cfg.recipe}", dynamic_ncols=True)
    teacher_s = 0.0
    for step, batch in zip(range(start, cfg.steps), loader):
        rng = np.random.default_rng([cfg.seed, step, rank])
        t_emb: List[torch.Tensor] = []
        tt = time.time()
        with torch.no_grad():
            for e, x in zip(batch["emb"], batch["teacher_in"]):
                t_emb.append(e.to(device) if e is not None else
                             teacher.encode_image(x[None].to(device))[0].half())
        teacher_s += time.time() - tt
        aligned = [align_embedding(e, gt, gs, e_s, hw) for e, hw in zip(t_emb, batch["hw"])]
        kwargs: Dict[str, Any] = dict(
            images=torch.stack(batch["images"]).to(device),
            target=torch.stack([a[0] for a in aligned]),
            weight=torch.stack([a[1] for a in aligned]),
            teacher_emb=t_emb, orig_hw=batch["hw"], rng=rng)
        if cfg.recipe == "sami":
            kwargs["masked"] = random_masking(rng, len(t_emb), e_s, cfg.mask_ratio).to(device)
        last = optimizer_step(opt, runner(**kwargs), opt_params, cfg.grad_clip,
                              lr_at(cfg, step))  # type: ignore[arg-type]
        bar.update(1)
        bar.set_postfix(loss=f"{last['loss']:.4f}")
        if end.after_step(step, last, lr_at(cfg, step)):  # type: ignore[arg-type]
            break
    bar.close()
    step, wall = end.finish()
    return {"step": step, "wall_s": wall, "losses": last, "trains": trains,
            "recipe": cfg.recipe, "teacher_id": teacher_id, "cache": cache_stats,
            "teacher_encode_s": teacher_s, "skipped_images": images.skipped}


__all__ = ["distill", "StepBatches", "save_state"]
