"""The tail of each step and of a run, shared by ``supervised.trainer.train`` and
``distill.run.distill``.

Each step: the optimizer update (``optimizer_step``). After every step: a JSON line in ``cfg.log_file`` (every ``log_every`` steps and the last one),
then the checkpoint-or-stop decision (``ckpt_every_steps`` / ``ckpt_every_seconds`` /
``max_seconds`` / ``max_cpu_seconds`` / ``stop_after``) and, on rank 0, the checkpoint. At the
end: a last checkpoint unless the last step already wrote one. Under DDP every rank takes the
same decisions; only rank 0 logs and saves (``write_state``: the resume file, atomically).
"""
from __future__ import annotations

import json
import os
import time
from typing import IO, Any, Callable, Dict, Iterable, Optional, Tuple

import torch
import torch.distributed as dist
from torch import nn


def optimizer_step(opt: torch.optim.Optimizer, out: Dict[str, torch.Tensor],
                   params: Iterable[torch.Tensor], grad_clip: float, lr: float
                   ) -> Dict[str, float]:
    """One update on ``out["loss"]`` at learning rate ``lr`` (gradients clipped to norm
    ``grad_clip`` unless 0); the step's losses as floats."""
    for g in opt.param_groups:
        g["lr"] = lr
    opt.zero_grad(set_to_none=True)
    out["loss"].backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(list(params), grad_clip)
    opt.step()
    # the step's losses read back in one copy (a float() each would sync each on a GPU)
    return dict(zip(out, torch.stack([v.detach().float() for v in out.values()]).tolist()))


def data_parallel(module: nn.Module, device: torch.device, world: int) -> nn.Module:
    """``module`` under DistributedDataParallel when the run has several ranks, else itself."""
    if world <= 1:
        return module
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids,
                                               find_unused_parameters=True)


def write_state(path: str, state: Dict[str, Any]) -> None:
    """``torch.save`` to ``path`` through a temporary file, so an interrupted write leaves the
    previous state."""
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)


def checkpoint_or_stop(cfg: Any, step: int, start: int, elapsed: float, since_ckpt: float,
                       world: int, cpu_elapsed: float = 0.0) -> Tuple[bool, bool]:
    """(write a checkpoint now, stop now) after ``step``, from the config's ckpt_every_steps /
    ckpt_every_seconds / max_seconds / max_cpu_seconds / stop_after; under DDP every rank gets
    the same answer."""
    due = bool(cfg.ckpt_every_steps and (step + 1) % cfg.ckpt_every_steps == 0) or bool(
        cfg.ckpt_every_seconds and since_ckpt >= cfg.ckpt_every_seconds)
    stop = bool(cfg.max_seconds and elapsed >= cfg.max_seconds) or bool(
        cfg.stop_after and step + 1 - start >= cfg.stop_after) or bool(
        cfg.max_cpu_seconds and cpu_elapsed >= cfg.max_cpu_seconds)
    if world > 1:  # every rank must agree on stopping / checkpointing
        flags = torch.tensor([float(due), float(stop)], device=collective_device())
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        due, stop = (bool(v) for v in flags.tolist())  # one host sync
    return due, stop


def collective_device() -> torch.device:
    """Where this rank's collective tensors live: NCCL has no CPU backend, so its tensors are
    on the rank's current CUDA device (torch.cuda.set_device(LOCAL_RANK)); gloo's on the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


class RunEnd:
    """Logging, checkpoints and stopping of one run from step ``start`` to ``cfg.steps``.

    Create it right before the loop (its clocks start then)::

        end = RunEnd(cfg, start, wall0, rank, world, save)
        for step in ...:
            ...  # one optimisation step; losses -> last
            if end.after_step(step, last, lr):
                break
        step, wall = end.finish()

    ``save(step, wall)`` writes the checkpoint after ``step`` steps and ``wall`` seconds of
    training (``wall0``: the seconds of the runs this one resumes). ``wall_digits``: the
    rounding of the log's ``wall``.
    """

    def __init__(self, cfg: Any, start: int, wall0: float, rank: int, world: int,
                 save: Callable[[int, float], None], wall_digits: int = 1) -> None:
        self.cfg, self.start, self.wall0 = cfg, start, wall0
        self.rank, self.world, self.save, self.wall_digits = rank, world, save, wall_digits
        self.t0 = self.last_ckpt = time.time()
        self.c0 = time.process_time()
        self.saved = start  # steps done at the last checkpoint
        self.stopped_at: Optional[int] = None
        self.log: Optional[IO[str]] = None
        if cfg.log_file and rank == 0:
            os.makedirs(os.path.dirname(os.path.abspath(cfg.log_file)), exist_ok=True)
            self.log = open(cfg.log_file, "a")

    def after_step(self, step: int, losses: Dict[str, float], lr: float) -> bool:
        """Log ``step``, checkpoint if due; True when the run stops after it."""
        cfg, now = self.cfg, time.time()
        if self.log is not None and (step % cfg.log_every == 0 or step == cfg.steps - 1):
            self.log.write(json.dumps({"step": step,
                                       "wall": round(self.wall0 + now - self.t0,
                                                     self.wall_digits),
                                       "lr": lr, **losses}) + "\n")
            self.log.flush()
        due, stop = checkpoint_or_stop(cfg, step, self.start, now - self.t0,
                                       now - self.last_ckpt, self.world,
                                       time.process_time() - self.c0)
        if (due or stop) and self.rank == 0:
            self.save(step + 1, self.wall0 + now - self.t0)
            self.last_ckpt, self.saved = now, step + 1
        if stop:
            self.stopped_at = step + 1
        return stop

    def finish(self) -> Tuple[int, float]:
        """(steps done, training wall time): ``cfg.steps`` unless a step stopped the run. Saves
        the last checkpoint (rank 0) unless it is already written, and closes the log."""
        step = self.stopped_at if self.stopped_at is not None else int(self.cfg.steps)
        wall = self.wall0 + time.time() - self.t0
        if self.rank == 0 and step > self.saved:
            self.save(step, wall)
        if self.log is not None:
            self.log.close()
        return step, wall


__all__ = ["RunEnd", "checkpoint_or_stop", "collective_device", "data_parallel", "optimizer_step",
           "write_state"]
