"""A distillation run's two models: the frozen teacher, the student's starting weights and what
the student trains by default; the teacher cache filled for them. Shared by the embedding
recipes (``run``) and the pseudo-label recipe (``pseudo_labels``)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Tuple

import torch
import torch.distributed as dist

from ...model import build_model, load_checkpoint, load_model
from ...model.loading import LoadedModel, source_kind
from ..init_weights import config_for, init_model
from ..data.unlabeled import UnlabeledImages
from ..freeze import present_parts
from .config import DistillConfig
from .teacher_cache import TeacherCache

if TYPE_CHECKING:
    from litesam_ros.model import SamModel


def default_freeze(recipe: str, model: SamModel) -> List[str]:
    parts = present_parts(model)
    if recipe in ("encoder_mse", "sami"):
        return [p for p in parts if p != "image_encoder"]
    if recipe == "full_kd":
        return [p for p in parts if p == "autoppn"]
    return ["image_encoder", "prompt_encoder"]


def load_teacher(source: str, device: str = "cpu") -> LoadedModel:
    """The teacher in eval mode, frozen, with its id (config, kind and weights hash) and its
    file's thresholds and IoU calibration (the pseudo-labels' segment-everything uses them)."""
    loaded = load_model(source, device)
    for p in loaded.model.parameters():
        p.requires_grad_(False)
    loaded.model.eval()
    return loaded


def copy_decoder(teacher: SamModel, student: SamModel) -> List[str]:
    """Copy the teacher's prompt encoder and mask decoder into the student where every tensor
    fits (MobileSAM keeps SAM's decoder); returns the parts copied."""
    done = []
    for part in ("prompt_encoder", "mask_decoder"):
        src, dst = getattr(teacher, part).state_dict(), getattr(student, part).state_dict()
        if src.keys() == dst.keys() and all(src[k].shape == dst[k].shape for k in src) and \
                teacher.config.decoder == student.config.decoder:
            getattr(student, part).load_state_dict(src)
            done.append(part)
    return done


def init_student(cfg: DistillConfig, teacher: SamModel) -> Tuple[SamModel, Dict[str, Any]]:
    """A fresh (seeded) or loaded student; where it came from, for the metadata."""
    student = cfg.student
    if isinstance(student, str) and source_kind(student) == "file":
        model, report = init_model(student, None, cfg.image_size)
        info: Dict[str, Any] = {"init": report.to_meta()}
        prev = load_checkpoint(student)[1] if report.kind == "checkpoint" else {}
        hist = list(prev.get("distill_history", []))
        if "distill" in prev:
            hist.append(prev["distill"])
        info["distill_history"] = hist
        return model, info
    torch.manual_seed(cfg.seed)
    model = build_model(config_for(student, cfg.image_size))
    copied = copy_decoder(teacher, model) if cfg.decoder_from_teacher else []
    return model, {"init": {"source": student if isinstance(student, str) else
                            model.config.name, "kind": "fresh",
                            "copied_from_teacher": copied}}


def build_cache(cfg: DistillConfig, teacher: SamModel, teacher_id: str, images: UnlabeledImages,
                rank: int = 0, world: int = 1) -> Tuple[TeacherCache, Dict[str, Any]]:
    """Fill the teacher cache (rank-split shards, then a barrier)."""
    cache = TeacherCache(cfg.cache_dir, teacher_id, cfg.shard_size)
    stats = cache.build(teacher, images, cfg.cache_batch_size, cfg.workers,
                        cfg.progress and rank == 0, rank, world, cfg.device)
    if world > 1:
        dist.barrier()
    return cache, stats


__all__ = ["default_freeze", "load_teacher", "copy_decoder", "init_student", "build_cache"]
