"""``litesam-train distill`` settings (YAML/JSON keys of the same names)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from ...model.registry import DEFAULT_MODEL
from ..supervised.trainer import config_from_dict, read_config_file
from .recipes import RECIPES
from .teacher_masks import everything_settings


@dataclass
class DistillConfig:
    """One distillation run. ``teacher``: anything ``load_model`` accepts (official SAM /
    MobileSAM / TinySAM / EfficientSAM file, this project's checkpoint, registry name = random
    weights). ``student``: a registry name or config dict (fresh, seeded; its prompt encoder and
    mask decoder copied from the teacher when they fit and ``decoder_from_teacher``), or a
    checkpoint (chaining: the previous recipe's output)."""

    recipe: str = "encoder_mse"  # encoder_mse | sami | full_kd | pseudo_labels
    teacher: str = "mobile_sam"
    student: Any = DEFAULT_MODEL
    checkpoint: str = "weights/distilled.pt"
    state_path: Optional[str] = None
    image_size: int = 0  # student input size; 0 = the student config's
    decoder_from_teacher: bool = True
    # parts of the student kept fixed; None = the recipe's default (encoder_mse / sami: all but
    # image_encoder; full_kd: autoppn; pseudo_labels: image_encoder + prompt_encoder)
    freeze: Optional[List[str]] = None
    data: Dict[str, Any] = field(default_factory=lambda: {"builtin": ["skimage"]})
    cache_dir: str = "cache/distill"
    use_cache: bool = True
    shard_size: int = 64
    cache_batch_size: int = 4
    workers: int = 0  # DataLoader worker processes (images, augmentation, cache reads)
    steps: int = 1000
    batch_size: int = 4
    lr: float = 1e-3
    min_lr_frac: float = 0.1
    weight_decay: float = 0.01
    warmup_steps: int = 50
    grad_clip: float = 1.0
    seed: int = 0
    threads: int = 0
    device: str = "cpu"
    ckpt_every_steps: int = 0
    ckpt_every_seconds: float = 300.0
    max_seconds: float = 0.0
    max_cpu_seconds: float = 0.0  # CPU time of this process (see TrainConfig)
    stop_after: int = 0
    log_every: int = 10
    log_file: Optional[str] = None
    progress: bool = True
    # full_kd
    prompts_per_image: int = 8
    candidate_factor: int = 4
    hard_rounds: int = 2
    emb_weight: float = 1.0
    mask_weight: float = 1.0
    iou_weight: float = 1.0
    # sami
    mask_ratio: float = 0.75
    sami_depth: int = 2
    sami_heads: int = 4
    # pseudo_labels: the teacher's segment-everything (SegmentSettings fields or the old keys,
    # teacher_masks.everything_settings) and any extra
    # TrainConfig keys for the student's training (losses, prompts, box_prob, ...)
    everything: Dict[str, Any] = field(default_factory=dict)
    train: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "DistillConfig":
        cfg: DistillConfig = config_from_dict(cls, d, "distill")
        return cfg

    def validate(self) -> None:
        if self.recipe not in RECIPES:
            raise ValueError(f"recipe {self.recipe!r} is not one of {list(RECIPES)}")
        if not 0.0 < self.mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in (0, 1), got {self.mask_ratio}")
        everything_settings(self.everything)  # a bad everything: key fails here, not after hours

    def state_file(self) -> str:
        return self.state_path or self.checkpoint + ".state.pt"


def load_distill_config(path: str) -> DistillConfig:
    """Read a YAML or JSON distill config."""
    return DistillConfig.from_dict(read_config_file(path))


__all__ = ["DistillConfig", "load_distill_config"]
