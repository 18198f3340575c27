"""Lite-SAM + AutoPPN trainer: single process or DDP (``torchrun``), checkpoints, exact resume.

Any SamModel config trains here (Lite-SAM, or a SAM-family encoder with or without an AutoPPN
head); ``freeze`` keeps chosen top-level modules bit-identical (see ``training.freeze``).

Determinism: the samples and prompts of step ``t`` on rank ``r`` depend only on (seed, t, r),
and the learning rate only on t, so resuming from ``<ckpt>`` + ``<ckpt>.state.pt`` (optimizer,
step, RNG) reproduces the same next step.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ...model import build_model, load_checkpoint
from ...model.geometry import Geometry
from ...model.registry import DEMO_MODEL, DEMO_WEIGHTS
from ..attention_init import tie_attention_qk
from ..checkpoints import save_model
from ..data.datasets import build_dataset
from ..forward import encode_maps_for_training
from ..freeze import LossPaths, apply_freeze, normalise_freeze, set_train_mode, trainable_parameters
from ..init_weights import config_for, init_model
from ..loop import RunEnd, data_parallel, optimizer_step, write_state
from ..losses import box_regression_loss, hard_mining_mse, mask_losses, offset_loss
from .prepare import Prepared, prepare, sample_prompts

if TYPE_CHECKING:
    from litesam_ros.model import SamModel

logger = logging.getLogger(__name__)

#: The model a fresh run builds when ``model`` is not given: the shipped demo weights' model
#: (their checkpoint is TrainConfig.checkpoint's default).
DEFAULT_TRAIN_MODEL = DEMO_MODEL


@dataclass
class TrainConfig:
    """Training settings (YAML/JSON keys of the same names)."""

    # registered name or a ModelConfig.to_dict(); None: init_from's own config, or
    # DEFAULT_TRAIN_MODEL for a fresh model. With init_from, the file's weights are loaded into
    # this config exactly; an AutoPPN head the file lacks starts from random init.
    model: Any = None
    checkpoint: str = f"weights/{DEMO_WEIGHTS}"
    state_path: Optional[str] = None  # default: checkpoint + ".state.pt"
    # weights to start from when not resuming: anything litesam_ros.model.load_model accepts
    # (this project's checkpoint, an official SAM / MobileSAM / TinySAM / EfficientSAM file)
    init_from: Optional[str] = None
    # top-level modules kept bit-identical: image_encoder, autoppn, prompt_encoder, mask_decoder
    freeze: List[str] = field(default_factory=list)
    # train at another input size; 0 = the model's. LiteViT, TinyViT and EfficientSAM weights are
    # size independent; SAM ViT's are not (an error)
    image_size: int = 0
    data: Dict[str, Any] = field(default_factory=lambda: {"type": "synthetic"})
    steps: int = 1000
    batch_size: int = 2
    prompts_per_image: int = 8
    box_prob: float = 0.5
    box_prob_ramp_steps: int = 0  # box prompts ramp up from 0 to box_prob (points are easier)
    qk_tied_init: float = 0.0  # fresh models: decoder k_proj = q_proj * gain (0 = off)
    lr: float = 1e-3
    min_lr_frac: float = 0.1
    weight_decay: float = 0.01
    warmup_steps: int = 50
    grad_clip: float = 1.0
    ppn_weight: float = 1.0
    box_weight: float = 1.0
    # sub-cell offsets of a head with ppn_offsets: smooth-L1 (cell units) at positive cells
    offset_weight: float = 1.0
    mask_weight: float = 1.0
    focal_weight: float = 20.0  # SAM: focal:dice = 20:1
    dice_weight: float = 1.0
    bce_weight: float = 0.0  # plain BCE on masks (not SAM's recipe; helps from scratch)
    iou_weight: float = 1.0
    seed: int = 0
    threads: int = 0  # torch.set_num_threads; 0 = leave as is
    device: str = "cpu"
    # Worker processes that make the batches (scene, targets, prompts) ahead of the training
    # step; 0 = in the training process. The batches are the same either way (see batches()).
    data_workers: int = 0
    ckpt_every_steps: int = 0
    ckpt_every_seconds: float = 300.0
    max_seconds: float = 0.0  # stop (and checkpoint) after this wall time; 0 = no limit
    # stop after this much CPU time of this process (all its threads; time.process_time): a
    # budget that other jobs on a shared machine do not shrink, unlike max_seconds. 0 = no limit
    max_cpu_seconds: float = 0.0
    stop_after: int = 0  # stop (and checkpoint) after this many steps in this run; 0 = no limit
    log_every: int = 10
    log_file: Optional[str] = None
    progress: bool = True
    metadata: Dict[str, Any] = field(default_factory=dict)  # extra checkpoint metadata

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "TrainConfig":
        return config_from_dict(cls, d, "training")

    def validate(self) -> None:
        """Normalise and check the fields that are checked before training (``freeze``,
        ``data_workers``)."""
        self.freeze = normalise_freeze(self.freeze)
        if isinstance(self.data_workers, bool) or int(self.data_workers) != self.data_workers \
                or self.data_workers < 0:
            raise ValueError(f"data_workers must be an integer >= 0, got {self.data_workers!r}")

    def state_file(self) -> str:
        return self.state_path or self.checkpoint + ".state.pt"


def config_from_dict(cls: Any, d: Dict[str, Any], what: str) -> Any:
    """A config dataclass from a dict: unknown keys refused, numbers coerced, validated."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ValueError(f"unknown {what} config keys: {sorted(unknown)}")
    defaults = cls()
    cfg = cls(**{k: coerce_number(k, getattr(defaults, k), v) for k, v in d.items()})
    cfg.validate()
    return cfg


def coerce_number(key: str, default: Any, value: Any) -> Any:
    """``value`` as the type of a numeric field's ``default`` when YAML left it a string.

    YAML 1.1 (PyYAML) reads ``3e-5`` (no dot) as the string "3e-5", which AdamW rejects much
    later; converting here keeps ``lr: 3e-5`` and ``--set lr=3e-5`` working.
    """
    if isinstance(value, str) and isinstance(default, (int, float)) and not isinstance(
            default, bool):
        try:
            return type(default)(float(value))
        except ValueError:
            raise ValueError(f"{key}: {value!r} is not a number") from None
    return value


def read_config_file(path: str) -> Dict[str, Any]:
    """A YAML or JSON config file as a dict."""
    with open(path) as f:
        text = f.read()
    if path.endswith(".json"):
        return dict(json.loads(text))
    import yaml

    return dict(yaml.safe_load(text) or {})


def load_config(path: str) -> TrainConfig:
    """Read a YAML or JSON training config."""
    return TrainConfig.from_dict(read_config_file(path))


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up then cosine decay to ``min_lr_frac * lr`` at ``cfg.steps``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
    return cfg.lr * (cfg.min_lr_frac + (1 - cfg.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * t)))


def box_prob_at(cfg: TrainConfig, step: int) -> float:
    """Box-prompt probability at ``step``: linear ramp over ``box_prob_ramp_steps``."""
    if cfg.box_prob_ramp_steps <= 0:
        return cfg.box_prob
    return cfg.box_prob * min(1.0, step / cfg.box_prob_ramp_steps)


class TrainStep(nn.Module):
    """Wraps the model so the whole loss is one ``forward`` (what DDP needs)."""

    def __init__(self, model: SamModel, cfg: TrainConfig,
                 paths: Optional[LossPaths] = None) -> None:
        super().__init__()
        self.model = model
        self.cfg = cfg
        self.paths = paths or LossPaths.of(model, cfg.freeze)

    def forward(self, images: torch.Tensor, heat_t: torch.Tensor, valid: torch.Tensor,
                box_t: torch.Tensor, box_w: torch.Tensor, coords: List[torch.Tensor],
                labels: List[torch.Tensor], gts: List[torch.Tensor], multi: List[torch.Tensor],
                off_t: Optional[torch.Tensor] = None, off_w: Optional[torch.Tensor] = None
                ) -> Dict[str, torch.Tensor]:
        cfg, paths = self.cfg, self.paths
        S = images.shape[-1]
        emb, maps = encode_maps_for_training(self.model, images, paths.encoder_grad,
                                                     paths.ppn)
        parts: Dict[str, torch.Tensor] = {}
        total = images.new_zeros(())
        if maps is not None:
            l_pt = hard_mining_mse(torch.sigmoid(maps.heatmap_logits), heat_t, valid)
            l_box = box_regression_loss(maps.boxes, box_t, box_w, float(S))
            parts.update(point=l_pt.detach(), box=l_box.detach())
            total = total + cfg.ppn_weight * l_pt + cfg.box_weight * l_box
            if maps.offsets is not None and off_t is not None and off_w is not None:
                l_off = offset_loss(maps.offsets, off_t, off_w)
                parts["offset"] = l_off.detach()
                total = total + cfg.offset_weight * l_off
        mask_total = images.new_zeros(())
        n_img = 0
        agg: Dict[str, torch.Tensor] = {}
        for b in range(images.shape[0] if paths.masks else 0):
            if coords[b].shape[0] == 0:
                mask_total = mask_total + 0.0 * emb[b].sum()
                continue
            logits, iou = self.model.decode(emb[b:b + 1], coords[b], labels[b])
            logits = F.interpolate(logits, size=(S, S), mode="bilinear", align_corners=False)
            l_m, info = mask_losses(logits, iou, gts[b], multi[b], cfg.focal_weight,
                                    cfg.dice_weight, cfg.iou_weight, cfg.bce_weight)
            mask_total = mask_total + l_m
            n_img += 1
            for k, v in info.items():
                agg[k] = agg.get(k, 0) + v
        mask_total = mask_total / max(n_img, 1)
        parts.update({k: v / max(n_img, 1) for k, v in agg.items()})
        total = total + cfg.mask_weight * mask_total
        if not total.requires_grad:  # no prompt and no PPN loss this step: zero gradients,
            # so backward (and DDP's all-reduce) still runs on every rank
            total = total + sum(0.0 * p.view(-1)[0] for _, p in
                                trainable_parameters(self.model))
        parts["loss"] = total
        return parts


def make_batch(dataset: Any, cfg: TrainConfig, step: int, rank: int, world: int,
               geometry: Geometry, grid: int, device: torch.device) -> Dict[str, Any]:
    """Tensors for step ``step`` on ``rank`` (deterministic in seed, step, rank)."""
    rng = np.random.default_rng([cfg.seed, step, rank])
    n = len(dataset)
    base = (step * world + rank) * cfg.batch_size
    preps: List[Prepared] = [prepare(dataset[(base + j + cfg.seed * 7919) % n], geometry, grid)
                             for j in range(cfg.batch_size)]
    coords, labels, gts, multi = [], [], [], []
    for p in preps:
        c, l, idx, ip = sample_prompts(p.masks, cfg.prompts_per_image, rng, box_prob_at(cfg, step))
        coords.append(torch.from_numpy(c).to(device))
        labels.append(torch.from_numpy(l).to(device))
        gts.append(torch.from_numpy(p.masks[idx].astype(np.float32)).to(device))
        multi.append(torch.from_numpy(ip).to(device))
    t = lambda a: torch.from_numpy(np.stack(a)).to(device)  # noqa: E731
    return dict(images=torch.stack([p.image for p in preps]).to(device),
                heat_t=t([p.targets.heatmap for p in preps]),
                valid=t([p.targets.valid for p in preps]),
                box_t=t([p.targets.box_target for p in preps]),
                box_w=t([p.targets.box_weight for p in preps]),
                off_t=t([p.targets.offset for p in preps]),
                off_w=t([p.targets.offset_weight for p in preps]),
                coords=coords, labels=labels, gts=gts, multi=multi)


class StepBatches(torch.utils.data.Dataset):
    """Item i = the CPU batch of step ``steps[i]`` (``make_batch``), for DataLoader workers."""

    def __init__(self, dataset: Any, cfg: TrainConfig, steps: range, rank: int, world: int,
                 geometry: Geometry, grid: int) -> None:
        self.dataset, self.cfg, self.steps = dataset, cfg, steps
        self.rank, self.world, self.geometry, self.grid = rank, world, geometry, grid

    def __len__(self) -> int:
        return len(self.steps)

    def __getitem__(self, i: int) -> Dict[str, Any]:
        return make_batch(self.dataset, self.cfg, self.steps[i], self.rank, self.world,
                          self.geometry, self.grid, torch.device("cpu"))


def batch_to(batch: Dict[str, Any], device: torch.device) -> Dict[str, Any]:
    """A batch's tensors (and lists of tensors) on ``device``."""
    move = lambda t: t.to(device, non_blocking=True)  # noqa: E731
    return {k: [move(t) for t in v] if isinstance(v, list) else move(v)
            for k, v in batch.items()}


def batches(dataset: Any, cfg: TrainConfig, start: int, rank: int, world: int,
            geometry: Geometry, grid: int, device: torch.device) -> Iterator[Dict[str, Any]]:
    """The batches of steps start..cfg.steps-1 in order, made in this process or, with
    ``cfg.data_workers``, by that many DataLoader worker processes a few steps ahead (a GPU
    otherwise waits for the CPU: a 320 px scene with its targets takes tens of ms). A batch is
    a function of (seed, step, rank) alone, so both give the same batches."""
    steps = range(start, cfg.steps)
    if not cfg.data_workers:
        for step in steps:
            yield make_batch(dataset, cfg, step, rank, world, geometry, grid, device)
        return
    loader = torch.utils.data.DataLoader(
        StepBatches(dataset, cfg, steps, rank, world, geometry, grid), batch_size=None,
        shuffle=False, num_workers=int(cfg.data_workers), prefetch_factor=4,
        pin_memory=device.type == "cuda")
    for batch in loader:
        yield batch_to(batch, device)


def dist_info() -> Tuple[int, int]:
    """(rank, world size); (0, 1) outside DDP."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def start_run(threads: int, device_name: str) -> Tuple[int, int, torch.device]:
    """Threads, the process group under torchrun (gloo on CPU, nccl on CUDA) and this rank's
    device: (rank, world, device). Shared by training and distillation."""
    if threads:
        torch.set_num_threads(threads)
    device = torch.device(device_name)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and device.type == "cuda":
        # this rank's GPU before NCCL starts: barriers and "cuda" tensors use the current one
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", os.environ["RANK"])))
        torch.cuda.set_device(device)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    rank, world = dist_info()
    if device.type == "cuda":  # TF32 tensor-core matmuls and convolutions: training only
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return rank, world, device


def save_state(cfg: TrainConfig, model: SamModel, opt: torch.optim.Optimizer, step: int,
               wall: float, init: Optional[Dict[str, Any]] = None) -> None:
    """Model checkpoint (model format) + ``<ckpt>.state.pt`` (optimizer, step, RNG, the names
    of the optimizer's parameters). ``init``: where the starting weights came from."""
    os.makedirs(os.path.dirname(os.path.abspath(cfg.checkpoint)), exist_ok=True)
    meta = {**cfg.metadata, "step": step, "train_wall_s": wall,
            "train_config": dataclasses.asdict(cfg)}
    if init:
        meta["init"] = init
    save_model(model, cfg.checkpoint, meta)
    st = {"optimizer": opt.state_dict(), "step": step, "wall": wall,
          "torch_rng": torch.get_rng_state(), "config": dataclasses.asdict(cfg),
          "trainable": [n for n, _ in trainable_parameters(model)]}
    write_state(cfg.state_file(), st)


def train(cfg: TrainConfig, resume: bool = True) -> Dict[str, Any]:
    """Run training to ``cfg.steps``; returns the last step's losses, step, wall time, the
    modules that train (``trains``) and where the starting weights came from (``init``).

    Under ``torchrun`` (env WORLD_SIZE > 1) or with an initialised process group it uses DDP
    (gloo on CPU, nccl on CUDA); rank 0 writes checkpoints and logs.
    """
    rank, world, device = start_run(cfg.threads, cfg.device)
    cfg.validate()
    torch.manual_seed(cfg.seed)
    start, wall0 = 0, 0.0
    state = None
    init: Optional[Dict[str, Any]] = None
    if resume and os.path.exists(cfg.checkpoint):
        model, ck_meta = load_checkpoint(cfg.checkpoint, "cpu")
        init = ck_meta.get("init")
        if os.path.exists(cfg.state_file()):
            state = torch.load(cfg.state_file(), map_location="cpu", weights_only=True)
            start, wall0 = int(state["step"]), float(state.get("wall", 0.0))
    elif cfg.init_from:
        model, report = init_model(cfg.init_from, cfg.model, cfg.image_size)
        init = report.to_meta()
        if rank == 0:
            level = logging.WARNING if report.config_differences else logging.INFO
            logger.log(level, "%s", report.describe())
    else:
        model = build_model(config_for(cfg.model or DEFAULT_TRAIN_MODEL,
                                                 cfg.image_size))
        if cfg.qk_tied_init:
            tie_attention_qk(model, cfg.qk_tied_init)
    trains = apply_freeze(model, cfg.freeze)
    model.to(device)
    set_train_mode(model, cfg.freeze)
    params = trainable_parameters(model)
    if state is not None and "trainable" in state and state["trainable"] != [n for n, _ in params]:
        raise ValueError(f"{cfg.state_file()} was written with other trainable parameters "
                         f"(train_config freeze={state.get('config', {}).get('freeze', [])}, "
                         f"now {cfg.freeze}); resume with the same freeze, or start a new "
                         "checkpoint / --no-resume")
    if rank == 0 and cfg.freeze:
        logger.info("freeze %s: training %s (%d tensors, %d parameters)", cfg.freeze, trains,
                 len(params), sum(p.numel() for _, p in params))
    mcfg = model.config
    geometry, grid = Geometry.of(mcfg), int(mcfg.embedding_size)
    opt = torch.optim.AdamW([p for _, p in params], lr=cfg.lr, weight_decay=cfg.weight_decay)
    if state is not None:
        opt.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
    step_mod = data_parallel(TrainStep(model, cfg, LossPaths.of(model, cfg.freeze)), device,
                             world)
    dataset = build_dataset(cfg.data)
    end = RunEnd(cfg, start, wall0, rank, world,
                 lambda done, wall: save_state(cfg, model, opt, done, wall, init), wall_digits=1)
    last: Dict[str, float] = {}
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, disable=not cfg.progress
               or rank != 0, desc="train", dynamic_ncols=True)
    for step, batch in zip(bar, batches(dataset, cfg, start, rank, world, geometry, grid,
                                        device)):
        last = optimizer_step(opt, step_mod(**batch), (p for _, p in params), cfg.grad_clip,
                              lr_at(cfg, step))
        bar.set_postfix(loss=f"{last['loss']:.3f}", iou=f"{last.get('train_iou', 0):.2f}")
        if end.after_step(step, last, lr_at(cfg, step)):
            break
    step, wall = end.finish()
    return {"step": step, "wall_s": wall, "losses": last, "trains": trains, "init": init}
