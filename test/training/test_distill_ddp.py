"""Distillation under DDP: 2 CPU processes with gloo (as the trainer's test)."""
from __future__ import annotations

import os
import pathlib
import socket

import torch
import torch.multiprocessing as mp

from distill_helpers import distill_config, teacher_file
from litesam_ros.model import load_checkpoint


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, tmp, teacher):
    import torch.distributed as dist

    from litesam_ros.training.distill.run import distill

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        cfg = distill_config(pathlib.Path(tmp), teacher, "encoder_mse", steps=3, batch_size=1,
                             data={"builtin": ["skimage"], "limit": 4, "max_side": 96})
        res = distill(cfg, resume=False)
        holder = load_checkpoint(cfg.checkpoint)[0] if rank == 0 else None
        torch.save({"res": res, "ck": holder.state_dict() if holder else None},
                   os.path.join(tmp, f"r{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_distill_ddp_two_cpu_processes_gloo(tmp_path):
    teacher = teacher_file(tmp_path)
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path), teacher), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "r0.pt", weights_only=False)
    r1 = torch.load(tmp_path / "r1.pt", weights_only=False)
    assert r0["res"]["step"] == 3 and r1["res"]["step"] == 3
    # the cache was split over the ranks (shards of 2: one shard each) and both see all of it
    c0, c1 = r0["res"]["cache"], r1["res"]["cache"]
    assert c0["embedded"] + c1["embedded"] == 4 and c0["shards_built"] == c1["shards_built"] == 1
    # ranks saw different images, gradients were averaged: the losses differ, the checkpoint
    # (rank 0) is one model, and it moved from the fresh student
    assert r0["res"]["losses"]["loss"] != r1["res"]["losses"]["loss"]
    assert os.path.exists(tmp_path / "encoder_mse.pt.state.pt")
    from litesam_ros.training.distill.student import init_student, load_teacher

    t = load_teacher(teacher).model
    cfg = __import__("distill_helpers").distill_config(tmp_path, teacher, "encoder_mse")
    fresh, _ = init_student(cfg, t)
    moved = [k for k, v in fresh.state_dict().items()
             if k.startswith("image_encoder") and not torch.equal(v, r0["ck"][k])]
    assert moved
